from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plastic_hotspots import __version__
from plastic_hotspots.cli import app, main

STAGE_COMMANDS = ("demo", "hotspots", "map")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plastic_hotspots.cli", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_the_stage_subcommands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for name in STAGE_COMMANDS:
        assert name in out.stdout


def test_every_subcommand_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert set(STAGE_COMMANDS) <= set(names)
    for name in names:
        command = group.commands[name]  # type: ignore[attr-defined]
        assert command.help, name
        assert len(command.help) > 20, name
        out = run_cli(name, "--help")
        assert out.returncode == 0, out.stderr
        assert "Usage" in out.stdout


def test_version() -> None:
    out = run_cli("--version")
    assert out.stdout.strip() == f"plastic-hotspots {__version__}"


def test_project_error_becomes_message_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["hotspots", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "basin config not found" in err
    assert "How to fix" in err
    assert not (tmp_path / "out").exists()


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hotspots"]) == 2
    assert "Missing option" in capsys.readouterr().err


def test_brackets_in_paths_and_hints_are_printed_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich markup in a path (``[/]`` crashed, ``[red]`` vanished) is text in an error message."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside the path
    folder = tmp_path / "survey [red] [/] [bold]2026[/bold]"
    code = main(["hotspots", "--config", str(folder / "basin.yaml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert str(folder / "basin.yaml") in err


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["map", "{result}", "--out", "{folder}"], "is a directory, not a file to write"),
        (["report", "{result}", "--out", "{folder}"], "is a directory, not a file to write"),
        (["detect", "{folder}", "--out", "{folder}"], "is a directory, not a file to write"),
        (["density", "{file}", "--out", "{folder}"], "is a directory, not a file to write"),
        (["hotspots", "--config", "{config}", "--out", "{file}"], "is a file, not a folder to write into"),
    ],
)
def test_an_output_of_the_wrong_kind_is_refused_before_any_work(
    command: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "existing-folder"
    folder.mkdir()
    result = tmp_path / "result"
    result.mkdir()
    file = tmp_path / "existing.geojson"
    file.write_text("{}")
    config = tmp_path / "basin.yaml"
    config.write_text("layers:\n  dem: dem.tif\n")
    args = [a.format(result=result, folder=folder, file=file, config=config) for a in command]
    code = main(args)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert message in err
    assert "Traceback" not in err
