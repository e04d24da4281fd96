"""The bad-input corpus (``tools/bad_inputs.py``) through the command line, one test per case.

A bad case ends with exit code 1, a message with its key words and no traceback; an accepted case ends
with exit code 0, says its key words (warnings included) and writes its files. The corpus is written once
by the committed script, run as a user would run it; each case then runs in this process through
``plastic_hotspots.cli.main`` (the ``plastic-hotspots`` entry point), which saves an interpreter start
per case. One case also runs in a subprocess, to check the printed warnings and the exit code there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from plastic_hotspots.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "bad_inputs.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("bad_inputs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module
    spec.loader.exec_module(module)
    return module


NAMES = _tool().case_names()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("corpus")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cases = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
    return {case["name"]: case for case in cases}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(args)
    captured = capsys.readouterr()
    said = [captured.out, captured.err, *(f"{w.category.__name__}: {w.message}" for w in caught)]
    return code, " ".join(" ".join(said).split())


@pytest.mark.parametrize("name", NAMES)
def test_case(
    name: str,
    corpus: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # paths in messages are not wrapped mid-name
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CACHE", str(tmp_path / "cache"))
    case = corpus[name]
    *before, last = case["commands"]
    outputs = []
    for args in before:
        code, said = _run(args, capsys)
        assert code == 0, said
        outputs.append(said)
    code, said = _run(last, capsys)
    assert code == case["exit_code"], said
    said = " ".join([*outputs, said])
    assert "Traceback" not in said
    assert "nan %" not in said
    for word in case["words"]:
        assert word.lower() in said.lower(), f"{word!r} not in: {said}"
    if case["exit_code"] == 1:
        assert "How to fix:" in said, said
    for output in case["outputs"]:
        assert Path(output).is_file(), output


def test_the_corpus_covers_every_layer_and_command() -> None:
    cases = _tool().cases()
    kinds = {case.kind for case in cases}
    assert kinds >= {
        "dem", "population", "zones", "rivers", "barriers", "observations", "boundaries", "config", "options",
        "map", "report", "density", "detect", "paths", "annotate", "train", "demo",
    }  # fmt: skip
    names = {case.name for case in cases}
    for layer in ("dem", "population", "zones", "rivers", "barriers", "observations", "boundaries"):
        for broken in ("zero_bytes", "text", "cut_short", "missing", "without_crs"):
            assert f"{layer}_{broken}" in names


def test_a_warning_and_an_error_from_a_real_process(corpus: dict[str, dict[str, Any]]) -> None:
    """The entry point as a user starts it: warnings reach the terminal as "Warning: ...", errors exit 1."""
    for name, code in (("barriers_far_away", 0), ("config_top_n_fraction", 1)):
        done = subprocess.run(
            [sys.executable, "-m", "plastic_hotspots.cli", *corpus[name]["commands"][-1]],
            capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "1000"},
        )  # fmt: skip
        said = " ".join((done.stdout + done.stderr).split())
        assert done.returncode == code, said
        assert "Traceback" not in said
        for word in corpus[name]["words"]:
            assert word.lower() in said.lower(), f"{word!r} not in: {said}"
        if code == 0:  # the warning as one line for people: no Python file, line or source
            assert "Warning: 2 of 10 barriers" in said
            assert "LayerWarning" not in said
            assert "warn_unplaced_barriers(" not in said
