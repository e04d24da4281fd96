"""Detection on Dask workers (a LocalCluster on 127.0.0.1): the same rows as in one process, with workers
and the client killed mid-run, the shipped model loaded by the workers, and errors that say how to fix."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
from exif_photos import write_exif_photo
from fake_detector import FakeDetector, exit_the_process, make_survey

from plastic_hotspots.cluster import Cluster, ClusterOptions, open_cluster
from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.ingest import IngestOptions, WorkItem
from plastic_hotspots.detector.predictor import YoloDetector, YoloSpec
from plastic_hotspots.detector.run import RunOptions, RunSummary, output_paths, run_detection
from plastic_hotspots.detector.workers import ChunkTask, loaded_detectors
from plastic_hotspots.errors import ClusterError, ConfigError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUN = RunOptions(chunk_size=4, batch_size=2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with open_cluster(ClusterOptions(workers=2, threads_per_worker=1)) as opened:
        yield opened


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """40 photos positioned by a sidecar, two broken files; and the outputs of a run in one process."""
    root = tmp_path_factory.mktemp("survey")
    sidecar, _ = make_survey(root / "photos", 40)
    (root / "photos" / "empty.jpg").write_bytes(b"")
    (root / "photos" / "notes.jpg").write_text("not an image")
    reference = root / "ref" / "d.parquet"
    run_detection(
        [root / "photos"], reference, FakeDetector(), ingest=IngestOptions(sidecar=sidecar), run=RUN
    )
    return sidecar, reference


def assert_same_outputs(reference: Path, out: Path) -> None:
    """The same rows, values and column types (the provenance's time stamp aside)."""
    ref, got = output_paths(reference), output_paths(out)
    for key in ("detections", "images"):
        a = pd.DataFrame(gpd.read_parquet(ref[key]))
        b = pd.DataFrame(gpd.read_parquet(got[key]))
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        table_a = pq.read_table(ref[key]).replace_schema_metadata(None)
        table_b = pq.read_table(got[key]).replace_schema_metadata(None)
        assert table_a.equals(table_b)
    assert got["rejects"].read_text() == ref["rejects"].read_text()
    assert not got["parts"].exists()


def test_two_workers_give_exactly_the_single_process_outputs(
    cluster: Cluster, survey: tuple[Path, Path], tmp_path: Path
) -> None:
    sidecar, reference = survey
    assert set(cluster.worker_threads().values()) == {1}
    assert cluster.address.startswith("tcp://127.0.0.1:")
    out = tmp_path / "d.parquet"
    detector = FakeDetector(delay_s=0.001)
    summary = run_detection(
        [sidecar.parent], out, detector, ingest=IngestOptions(sidecar=sidecar), run=RUN, cluster=cluster
    )
    assert (summary.images, summary.rejected, summary.exit_code) == (40, 2, 3)
    assert_same_outputs(reference, out)
    assert detector.calls == 0  # the client did not detect anything itself
    # Both workers did chunks, and each built its detector once for the 11 chunks.
    loaded = cluster.run_on_workers(loaded_detectors)
    assert len(loaded) == 2
    for models in loaded.values():
        assert models.count("FakeSpec(delay_s=0.001) threads=1") == 1


def test_a_worker_killed_mid_run_loses_no_image_and_duplicates_none(
    cluster: Cluster, survey: tuple[Path, Path], tmp_path: Path
) -> None:
    sidecar, reference = survey
    out = tmp_path / "d.parquet"
    parts = output_paths(out)["parts"]
    pids = list(cluster.run_on_workers(os.getpid).values())
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(parts.glob("images-*.parquet"))) < 2:
            time.sleep(0.01)
        killed.append(len(list(parts.glob("images-*.parquet"))))
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    summary = run_detection(
        [sidecar.parent],
        out,
        FakeDetector(delay_s=0.05),
        ingest=IngestOptions(sidecar=sidecar),
        run=RUN,
        cluster=cluster,
    )
    killer.join()
    assert 2 <= killed[0] < 9, "the kill should land mid-run"
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE
    assert (summary.images, summary.rejected) == (40, 2)
    assert_same_outputs(reference, out)


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from fake_detector import FakeDetector
from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import RunOptions, run_detection
from plastic_hotspots.cluster import ClusterOptions, open_cluster
with open_cluster(ClusterOptions(workers=2)) as cluster:
    run_detection([Path({photos!r})], Path({out!r}), FakeDetector(delay_s={delay}),
                  ingest=IngestOptions(sidecar=Path({sidecar!r})), run=RunOptions(chunk_size=4, batch_size=2,
                  resume={resume}), cluster=cluster)
"""


def _child(photos: Path, out: Path, sidecar: Path, delay: float, resume: bool) -> subprocess.Popen[bytes]:
    code = CHILD.format(
        here=str(HERE), photos=str(photos), out=str(out), sidecar=str(sidecar), delay=delay, resume=resume
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


def test_client_killed_then_resumed_on_workers_gives_exactly_the_uninterrupted_outputs(
    survey: tuple[Path, Path], tmp_path: Path
) -> None:
    sidecar, reference = survey
    out = tmp_path / "d.parquet"
    parts = output_paths(out)["parts"]
    child = _child(sidecar.parent, out, sidecar, delay=0.1, resume=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(parts.glob("images-*.parquet"))) < 3:
        time.sleep(0.02)
    workers = psutil.Process(child.pid).children(recursive=True)
    child.send_signal(signal.SIGKILL)
    child.wait()
    committed = len(list(parts.glob("images-*.parquet")))
    assert 3 <= committed < 10, "the kill should land mid-run"
    assert not out.exists()
    assert workers, "the run had worker processes"
    _, alive = psutil.wait_procs(workers, timeout=20)  # a local cluster's workers go with their client
    assert alive == []

    resumed = _child(sidecar.parent, out, sidecar, delay=0.0, resume=True)
    assert resumed.wait(timeout=120) == 0
    assert_same_outputs(reference, out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLASTIC_HOTSPOTS_CACHE": str(cwd / "cache"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "plastic_hotspots.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_unreachable_scheduler_exits_1_with_how_to_fix(survey: tuple[Path, Path], tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    proc = _cli("detect", str(survey[0].parent), "--scheduler", address, "--scheduler-timeout", "1",
                "--out", "d.parquet", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"cannot reach the Dask scheduler at {address}" in proc.stderr
    assert "How to fix:" in proc.stderr
    assert "dask scheduler" in proc.stderr
    assert time.monotonic() - started < 60
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler") as info:
        open_cluster(ClusterOptions(scheduler=address, timeout_s=0.5))
    assert "tcp://HOST:8786" in info.value.hint


@pytest.mark.parametrize("address", ["notanaddress", "tcp://host-without-port", "tcp://127.0.0.1:port"])
def test_a_malformed_scheduler_address_is_refused_at_once(address: str) -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError, match="is not a scheduler address") as info:
        open_cluster(ClusterOptions(scheduler=address, timeout_s=5))
    assert "tcp://HOST:PORT" in info.value.hint
    assert time.monotonic() - started < 5  # no client made, none left to hang on closing


def test_both_workers_and_scheduler_is_refused(tmp_path: Path) -> None:
    proc = _cli("detect", ".", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert proc.returncode == 1
    assert "--workers starts workers on this machine, --scheduler uses an existing" in proc.stderr
    assert "How to fix:" in proc.stderr


def test_without_dask_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ClusterError, match="needs Dask") as info:
        open_cluster(ClusterOptions(workers=2))
    assert "plastic-hotspots[scale]" in info.value.hint


def test_a_worker_that_cannot_read_the_model_says_so(cluster: Cluster, tmp_path: Path) -> None:
    spec = YoloSpec(str(tmp_path / "elsewhere.pt"), "0" * 64, "openvino", 320, 0.25, 0.5, "cpu", 0, 0.2, 1)
    task = ChunkTask(spec, IngestOptions(), 1, ("bottle",), os.getcwd())
    items = [[WorkItem(str(tmp_path / "a.jpg"), "photo", tmp_path / "a.jpg")]]
    with pytest.raises(ModelError, match=r"cannot read the model file .*elsewhere\.pt") as info:
        list(cluster.map_unordered(task, items))
    assert "every worker" in info.value.hint  # the hint survives the trip from the worker


def test_relative_paths_on_a_worker_in_another_folder_are_refused(tmp_path: Path) -> None:
    task = ChunkTask(FakeDetector().spec(), IngestOptions(), 1, ("bottle",), str(tmp_path / "client"))
    with pytest.raises(ConfigError, match=r"cannot find the relative path photos/a\.jpg") as info:
        task([WorkItem("photos/a.jpg", "photo", Path("photos/a.jpg"))])
    assert "absolute paths" in info.value.hint


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        img = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
        write_exif_photo(folder / f"p{i}.jpg", img, lat=20.2 + i * 1e-4, lon=100.1 + i * 1e-4)
    return folder


def _same(a: RunSummary, b: RunSummary) -> bool:
    return (a.images, a.rejected, a.detections) == (b.images, b.rejected, b.detections)


def test_workers_load_the_shipped_model_once_and_match_one_process(cluster: Cluster, tmp_path: Path) -> None:
    weights = tmp_path / "litter-baseline.pt"  # a copy: its OpenVINO export goes beside it, in tmp
    shutil.copyfile(ROOT / "detector" / "models" / "litter-baseline.pt", weights)
    photos = _photos(tmp_path / "photos", 8)
    settings = {"backend": "openvino", "imgsz": 320, "conf": 0.02}
    detector = YoloDetector(weights, config_dir=tmp_path / "cache" / "ultralytics", **settings)  # type: ignore[arg-type]
    ingest = IngestOptions(decode_size=320)
    run = RunOptions(chunk_size=2, batch_size=2)
    here = run_detection([photos], tmp_path / "here" / "d.parquet", detector, ingest=ingest, run=run)
    there = run_detection(
        [photos], tmp_path / "there" / "d.parquet", detector, ingest=ingest, run=run, cluster=cluster
    )
    assert here.detections > 0
    assert _same(here, there)
    assert_same_outputs(tmp_path / "here" / "d.parquet", tmp_path / "there" / "d.parquet")
    for models in cluster.run_on_workers(loaded_detectors).values():
        assert sum("YoloSpec(" in m and "litter-baseline.pt" in m and "threads=1" in m for m in models) == 1

    # The command line with --workers 2 gives the same outputs.
    proc = _cli("detect", str(photos), "--model", str(weights), "--backend", "openvino", "--imgsz", "320",
                "--conf", "0.02", "--workers", "2", "--chunk-size", "2", "--batch-size", "2",
                "--out", str(tmp_path / "cli" / "d.parquet"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_outputs(tmp_path / "here" / "d.parquet", tmp_path / "cli" / "d.parquet")

    # ... and so does --scheduler with the address of a cluster this command did not start.
    proc = _cli("detect", str(photos), "--model", str(weights), "--backend", "openvino", "--imgsz", "320",
                "--conf", "0.02", "--scheduler", cluster.address, "--chunk-size", "2", "--batch-size", "2",
                "--out", str(tmp_path / "remote" / "d.parquet"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_outputs(tmp_path / "here" / "d.parquet", tmp_path / "remote" / "d.parquet")
    assert len(cluster.worker_threads()) == 2  # the command left the cluster running


def test_a_task_that_keeps_killing_workers_stops_with_a_clear_error(cluster: Cluster) -> None:
    with pytest.raises(ClusterError, match="running on workers that died each time") as info:
        list(cluster.map_unordered(exit_the_process, ["the bad input"]))
    assert "memory" in info.value.hint
