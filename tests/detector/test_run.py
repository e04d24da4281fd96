"""The batch runner: outputs, rejects, resume after kill -9, refusing a mismatched resume."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from fake_detector import FakeDetector, make_survey

from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import EXIT_REJECTS, RunOptions, output_paths, run_detection
from plastic_hotspots.errors import ConfigError
from plastic_hotspots.geoio import read_provenance

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_outputs_and_rejects(tmp_path: Path) -> None:
    sidecar, expected = make_survey(tmp_path / "photos", 12)
    (tmp_path / "photos" / "empty.jpg").write_bytes(b"")
    (tmp_path / "photos" / "notes.jpg").write_text("not an image")
    out = tmp_path / "out" / "detections.parquet"
    summary = run_detection(
        [tmp_path / "photos"],
        out,
        FakeDetector(),
        ingest=IngestOptions(sidecar=sidecar),
        run=RunOptions(chunk_size=5, batch_size=3, gpkg=True),
    )
    assert (summary.images, summary.rejected, summary.detections) == (12, 2, expected)
    assert summary.exit_code == EXIT_REJECTS
    paths = output_paths(out)
    dets = gpd.read_parquet(paths["detections"])
    images = gpd.read_parquet(paths["images"])
    assert len(dets) == expected
    assert dets.crs.to_epsg() == 4326
    assert set(dets.columns) >= {
        "image",
        "class_name",
        "score",
        "x1",
        "y1",
        "x2",
        "y2",
        "lon",
        "lat",
        "location_error_m",
        "geometry",
    }
    ok = images[images["status"] == "ok"]
    assert ok["items"].sum() == expected
    assert (ok["n_bottle"] + ok["n_bag_film"]).tolist() == ok["items"].tolist()
    with paths["rejects"].open() as handle:
        reasons = {Path(r["image"]).name: r["reason"] for r in csv.DictReader(handle)}
    assert reasons == {"empty.jpg": "empty_file", "notes.jpg": "not_an_image"}
    prov = read_provenance(paths["detections"])
    assert prov.model == "fake-0001"
    assert prov.parameters["chunk_size"] == 5
    assert not paths["parts"].exists()
    layers = set(gpd.list_layers(paths["gpkg"])["name"])
    assert {"detections", "images", "provenance"} <= layers


def test_interrupted_run_requires_resume_or_overwrite(tmp_path: Path) -> None:
    sidecar, _ = make_survey(tmp_path / "photos", 3)
    out = tmp_path / "d.parquet"
    output_paths(out)["parts"].mkdir()
    with pytest.raises(ConfigError, match="interrupted run"):
        run_detection([tmp_path / "photos"], out, FakeDetector(), ingest=IngestOptions(sidecar=sidecar))
    summary = run_detection(
        [tmp_path / "photos"],
        out,
        FakeDetector(),
        ingest=IngestOptions(sidecar=sidecar),
        run=RunOptions(overwrite=True),
    )
    assert summary.images == 3


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from fake_detector import FakeDetector
from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import RunOptions, run_detection
run_detection([Path({photos!r})], Path({out!r}), FakeDetector(delay_s={delay}),
              ingest=IngestOptions(sidecar=Path({sidecar!r})), run=RunOptions(chunk_size=4, batch_size=2,
              resume={resume}))
"""


def _child(photos: Path, out: Path, sidecar: Path, delay: float, resume: bool) -> subprocess.Popen[bytes]:
    code = CHILD.format(
        here=str(HERE), photos=str(photos), out=str(out), sidecar=str(sidecar), delay=delay, resume=resume
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


def test_kill_9_then_resume_gives_exactly_the_uninterrupted_rows(tmp_path: Path) -> None:
    sidecar, _ = make_survey(tmp_path / "photos", 40)
    reference = tmp_path / "ref" / "d.parquet"
    run_detection(
        [tmp_path / "photos"],
        reference,
        FakeDetector(),
        ingest=IngestOptions(sidecar=sidecar),
        run=RunOptions(chunk_size=4, batch_size=2),
    )

    out = tmp_path / "run" / "d.parquet"
    out.parent.mkdir()
    parts = output_paths(out)["parts"]
    child = _child(tmp_path / "photos", out, sidecar, delay=0.05, resume=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(parts.glob("images-*.parquet"))) < 3:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    committed = len(list(parts.glob("images-*.parquet")))
    assert 3 <= committed < 10, "the kill should land mid-run"
    assert not out.exists()

    resumed = _child(tmp_path / "photos", out, sidecar, delay=0.0, resume=True)
    assert resumed.wait(timeout=120) == 0
    for key in ("detections", "images"):
        a = pd.DataFrame(gpd.read_parquet(output_paths(reference)[key]).drop(columns="geometry"))
        b = pd.DataFrame(gpd.read_parquet(output_paths(out)[key]).drop(columns="geometry"))
        pd.testing.assert_frame_equal(a, b)
    assert len(pd.read_parquet(output_paths(out)["images"])) == 40


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    sidecar, _ = make_survey(tmp_path / "photos", 3)
    out = tmp_path / "d.parquet"
    parts = output_paths(out)["parts"]
    parts.mkdir()
    (parts / "run.json").write_text('{"sources": [], "ingest": {}, "model": "other", "classes": []}')
    with pytest.raises(ConfigError, match="different settings"):
        run_detection(
            [tmp_path / "photos"],
            out,
            FakeDetector(),
            ingest=IngestOptions(sidecar=sidecar),
            run=RunOptions(resume=True),
        )


def test_a_finished_out_needs_overwrite_and_a_living_run_holds_its_lock(tmp_path: Path) -> None:
    """A second run over a finished result is refused; one racing a living run is refused; a dead run's lock
    is taken over; the run's own files in its input folder are never read as inputs."""
    from plastic_hotspots.detector.run import output_lock_path

    sidecar, expected = make_survey(tmp_path / "photos", 4)
    out = tmp_path / "photos" / "detections.parquet"  # inside the input folder on purpose
    ingest = IngestOptions(sidecar=sidecar)
    first = run_detection([tmp_path / "photos"], out, FakeDetector(), ingest=ingest)
    assert (first.images, first.rejected) == (4, 0)
    with pytest.raises(ConfigError, match="holds a finished detect run"):
        run_detection([tmp_path / "photos"], out, FakeDetector(), ingest=ingest)
    again = run_detection(
        [tmp_path / "photos"], out, FakeDetector(), ingest=ingest, run=RunOptions(overwrite=True)
    )
    assert (again.images, again.rejected, again.detections) == (4, 0, expected)  # its outputs are not inputs
    lock = output_lock_path(out)
    assert not lock.exists()  # released
    import socket

    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(f"{socket.gethostname()}:{living.pid}\n")
        with pytest.raises(ConfigError, match=f"another detect run \\(process {living.pid}\\)"):
            run_detection(
                [tmp_path / "photos"], out, FakeDetector(), ingest=ingest, run=RunOptions(overwrite=True)
            )
    finally:
        living.kill()
        living.wait()
    # Its process is gone: the lock is stale and the next run takes it over.
    third = run_detection(
        [tmp_path / "photos"], out, FakeDetector(), ingest=ingest, run=RunOptions(overwrite=True)
    )
    assert third.images == 4
    assert not lock.exists()


def test_resume_on_a_finished_out_adds_only_the_new_images(tmp_path: Path) -> None:
    sidecar, _ = make_survey(tmp_path / "photos", 6)
    later = tmp_path / "later"
    later.mkdir()
    for name in ("img_0004.jpg", "img_0005.jpg"):  # taken after the first run
        (tmp_path / "photos" / name).rename(later / name)
    (tmp_path / "photos" / "broken.jpg").write_text("not an image")
    out = tmp_path / "out" / "d.parquet"
    ingest = IngestOptions(sidecar=sidecar)
    first = run_detection([tmp_path / "photos"], out, FakeDetector(), ingest=ingest)
    assert (first.images, first.rejected) == (4, 1)
    for name in ("img_0004.jpg", "img_0005.jpg"):
        (later / name).rename(tmp_path / "photos" / name)
    detector = FakeDetector()
    second = run_detection(
        [tmp_path / "photos"], out, detector, ingest=ingest, run=RunOptions(resume=True, batch_size=8)
    )
    assert second.skipped_done == 5  # four photos and the broken file: seen, not read again
    assert detector.calls == 1  # one batch: the two new photos
    assert (second.images, second.rejected) == (6, 1)
    whole = run_detection(
        [tmp_path / "photos"], tmp_path / "whole" / "d.parquet", FakeDetector(), ingest=ingest
    )
    paths, whole_paths = output_paths(out), output_paths(tmp_path / "whole" / "d.parquet")
    for name in ("detections", "images"):
        got = gpd.read_parquet(paths[name]).drop(columns="geometry")
        want = gpd.read_parquet(whole_paths[name]).drop(columns="geometry")
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert whole.detections == second.detections
    assert not paths["parts"].exists()
    again = run_detection(
        [tmp_path / "photos"], out, FakeDetector(), ingest=ingest, run=RunOptions(resume=True)
    )
    assert (again.images, again.skipped_done) == (6, 7)  # nothing new: nothing detected, nothing lost


def test_a_second_run_racing_a_living_one_is_refused_and_the_first_ends_whole(tmp_path: Path) -> None:
    """Two real runs on one --out: the second (even with --resume or --overwrite, as the hint of an
    interrupted run says) is refused while the first lives; the first then writes every image once."""
    from plastic_hotspots.detector.run import output_lock_path

    sidecar, expected = make_survey(tmp_path / "photos", 20)
    out = tmp_path / "run" / "d.parquet"
    out.parent.mkdir()
    first = _child(tmp_path / "photos", out, sidecar, delay=0.1, resume=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not output_lock_path(out).exists():
        time.sleep(0.02)
    try:
        for run in (RunOptions(), RunOptions(resume=True), RunOptions(overwrite=True)):
            with pytest.raises(ConfigError, match=f"another detect run \\(process {first.pid}\\)"):
                run_detection([tmp_path / "photos"], out, FakeDetector(), run=run,
                              ingest=IngestOptions(sidecar=sidecar))  # fmt: skip
    finally:
        assert first.wait(timeout=120) == 0
    images = pd.read_parquet(output_paths(out)["images"])
    assert sorted(Path(p).name for p in images["image"]) == [f"img_{i:04d}.jpg" for i in range(20)]
    assert len(gpd.read_parquet(out)) == expected
    assert not output_lock_path(out).exists()
