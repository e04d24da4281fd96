"""``plastic-hotspots detect`` from the command line: outputs, exit codes, errors that say how to fix."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from exif_photos import write_exif_photo

from plastic_hotspots.detector.yolo import build_tiny_model
from plastic_hotspots.geoio import read_provenance


def _cli(*args: str, cwd: Path, model_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLASTIC_HOTSPOTS_CACHE": str(cwd / "cache"), "COLUMNS": "200"}
    env.pop("PLASTIC_HOTSPOTS_MODEL", None)
    if model_env:
        env["PLASTIC_HOTSPOTS_MODEL"] = model_env
    return subprocess.run(
        [sys.executable, "-m", "plastic_hotspots.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    build_tiny_model(
        root / "tiny.pt", {0: "bottle", 1: "bag_film"}, config_dir=root / "cfg", spread_scores=True
    )
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i, (lat, lon) in enumerate([(20.27, 100.08), (-33.45, -70.67), (51.5, -0.12)]):
        img = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
        write_exif_photo(photos / f"p{i}.jpg", img, lat=lat, lon=lon, orientation=6 if i == 1 else 1)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return root


def test_detect_writes_outputs_and_exit_code_3_for_rejects(survey: Path) -> None:
    out = survey / "out" / "detections.parquet"
    proc = _cli("detect", "photos", "--model", "tiny.pt", "--backend", "onnx", "--imgsz", "160",
                "--conf", "0.05", "--out", str(out), "--gpkg", cwd=survey)  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "3 images" in proc.stderr
    assert "1 rejected" in proc.stderr
    images = gpd.read_parquet(out.with_name("detections.images.parquet"))
    ok = images[images["status"] == "ok"].sort_values("image")
    np.testing.assert_allclose(ok["lat"], [20.27, -33.45, 51.5], atol=1e-6)
    np.testing.assert_allclose(ok["lon"], [100.08, -70.67, -0.12], atol=1e-6)
    assert ok["width"].tolist() == [320, 320, 320]  # p1 stored sideways, read upright
    assert ok["height"].tolist() == [240, 240, 240]
    dets = gpd.read_parquet(out)
    assert len(dets) == ok["items"].sum() > 0
    assert (dets["x2"] <= 320).all()
    assert (dets["y2"] <= 240).all()
    expected = {"bottle": "G7;G8;G21", "bag_film": "G3;G4;G67"}  # the tiny model's classes
    assert [expected[c] for c in dets["class_name"]] == dets["litter_list_codes"].tolist()
    prov = read_provenance(out)
    assert prov is not None
    assert prov.model is not None
    assert prov.model.startswith("tiny.pt sha256:")
    assert prov.parameters["backend"] == "onnx"
    assert prov.parameters["precision"] == "fp32"
    assert "backend: onnx, precision: fp32" in " ".join(proc.stderr.split())
    rejects = pd.read_csv(out.with_name("detections.rejects.csv"))
    assert rejects["reason"].tolist() == ["truncated"]
    assert gpd.list_layers(out.with_suffix(".gpkg"))["name"].tolist()[:2] == ["detections", "images"]


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_detect_by_default_chooses_openvino_and_records_why(survey: Path) -> None:
    out = survey / "auto" / "detections.parquet"
    proc = _cli(
        "detect", "photos/p0.jpg", "--model", "tiny.pt", "--imgsz", "160", "--out", str(out), cwd=survey
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    prov = read_provenance(out)
    assert prov is not None
    precision = prov.parameters["precision"]
    assert precision in ("bf16", "fp32")
    assert prov.parameters["backend"] == "openvino"
    assert "openvino: the fastest CPU backend" in str(prov.parameters["backend_choice"])
    assert prov.model is not None
    assert prov.model.endswith(f" openvino {precision}")
    assert f"backend: openvino, precision: {precision}" in " ".join(proc.stderr.split())


def test_missing_model_and_unknown_backend_say_how_to_fix(survey: Path) -> None:
    proc = _cli("detect", "photos", "--model", "gone.pt", "--out", "d.parquet", cwd=survey)
    assert proc.returncode == 1
    assert "gone.pt does not exist" in proc.stderr
    proc = _cli("detect", "photos", "--out", "d.parquet", cwd=survey, model_env=str(survey / "gone.pt"))
    assert proc.returncode == 1
    assert "no litter model" in proc.stderr
    assert "How to fix" in proc.stderr
    assert "--model" in proc.stderr
    proc = _cli("detect", "photos", "--model", "tiny.pt", "--backend", "tensorflow", cwd=survey)
    assert proc.returncode == 1
    assert "unknown backend 'tensorflow'" in proc.stderr
    assert "pytorch, onnx, openvino" in proc.stderr


def test_help_lists_detect() -> None:
    proc = subprocess.run([sys.executable, "-m", "plastic_hotspots.cli", "--help"], capture_output=True,
                          text=True, check=False, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert proc.returncode == 0
    assert "detect" in proc.stdout
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "detect", "--help"]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    for option in (
        "--model",
        "--backend",
        "--resume",
        "--sidecar",
        "--gpx",
        "--slice-size",
        "--clock-offset-s",
        "--track-items",
        "--track-every-s",
    ):
        assert option in proc.stdout


def test_detect_uses_the_shipped_model_without_model(survey: Path) -> None:
    """A fresh install detects with the baseline shipped in the package; no --model needed."""
    out = survey / "default" / "detections.parquet"
    proc = _cli("detect", "photos/p0.jpg", "--backend", "onnx", "--out", str(out), cwd=survey)
    assert proc.returncode == 0, proc.stderr[-2000:]
    prov = read_provenance(out)
    assert prov.model is not None
    assert prov.model.startswith("litter-baseline.pt sha256:333eaf5d699b")
