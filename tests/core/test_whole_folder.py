"""Runs are whole or absent: a result folder is swapped in at the end, never half-written over an old one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plastic_hotspots.geoio import whole_folder

OWN = frozenset({"a.tif", "hotspots.gpkg", "provenance.json"})


def test_a_finished_run_replaces_the_old_result_and_keeps_a_users_files(tmp_path: Path) -> None:
    out = tmp_path / "result"
    out.mkdir()
    (out / "a.tif").write_text("old")
    (out / "provenance.json").write_text("old")  # the new run does not write it: it must not survive
    (out / "map.html").write_text("the user's map")
    with whole_folder(out, OWN) as partial:
        assert partial != out
        assert partial.parent == out.parent
        (partial / "a.tif").write_text("new")
        (partial / "hotspots.gpkg").write_text("new")
        assert (out / "a.tif").read_text() == "old"  # untouched while the run writes
    assert (out / "a.tif").read_text() == "new"
    assert (out / "hotspots.gpkg").read_text() == "new"
    assert not (out / "provenance.json").exists()
    assert (out / "map.html").read_text() == "the user's map"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_a_failed_run_leaves_the_old_result_whole_and_no_partial_folder(tmp_path: Path) -> None:
    out = tmp_path / "result"
    out.mkdir()
    (out / "a.tif").write_text("old")

    def failing_run() -> None:
        with whole_folder(out, OWN) as partial:
            (partial / "a.tif").write_text("new")
            raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError, match="killed"):
        failing_run()
    assert (out / "a.tif").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_a_killed_runs_partial_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "result"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from plastic_hotspots.geoio import whole_folder\n"
        f"with whole_folder(Path({str(out)!r}), set()) as partial:\n"
        "    (partial / 'a.tif').write_text('half')\n"
        "    os._exit(9)  # as kill -9: no cleanup runs\n"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".result.partial-")
    assert not out.exists()  # no result rather than half a result
    with whole_folder(out, OWN) as partial:
        (partial / "a.tif").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    assert (out / "a.tif").read_text() == "whole"


def test_a_living_runs_partial_folder_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "result"
    other = tmp_path / f".result.partial-{os.getppid()}"  # a process that lives: this test's parent
    other.mkdir()
    with whole_folder(out, OWN) as partial:
        (partial / "a.tif").write_text("x")
    assert other.is_dir()
    shutil.rmtree(other)


def test_a_killed_writes_temporary_is_removed_by_the_next_write_of_that_file(tmp_path: Path) -> None:
    from plastic_hotspots.geoio import atomic_path

    target = tmp_path / "report [1].html"
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from plastic_hotspots.geoio import atomic_path\n"
        f"with atomic_path(Path({str(target)!r})) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os._exit(9)  # as kill -9: no cleanup runs\n"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1
    assert left[0].startswith(".report [1].tmp-")
    assert left[0].endswith(".html")  # the writer still sees the format by the suffix
    living = tmp_path / f".report [1].tmp-{os.getppid()}-abcd.html"  # a run writing it now
    living.write_text("busy")
    other = tmp_path / ".map.tmp-999999999-abcd.html"  # another file's: not this write's business
    other.write_text("x")
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, living.name, other.name])
    assert target.read_text() == "whole"


def test_a_swap_cut_between_its_renames_is_finished_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "result"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    # As a kill leaves it between `target -> .old` and `.partial -> target`: no result folder at all.
    old, done = tmp_path / f".result.old-{dead}", tmp_path / f".result.partial-{dead}"
    old.mkdir()
    (old / "a.tif").write_text("old")
    done.mkdir()
    (done / "a.tif").write_text("finished")
    (done / "map.html").write_text("the user's map")

    def failing_run() -> None:
        with whole_folder(out, OWN) as partial:
            (partial / "a.tif").write_text("half")
            raise RuntimeError("this run fails too")

    with pytest.raises(RuntimeError):
        failing_run()
    assert (out / "a.tif").read_text() == "finished"  # the cut swap was finished, not thrown away
    assert (out / "map.html").read_text() == "the user's map"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
