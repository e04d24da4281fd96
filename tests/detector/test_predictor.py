"""The YOLO detector on its three backends, with a tiny model built from YAML (no download)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from offline import no_network_site

from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.predictor import YoloDetector
from plastic_hotspots.detector.runtime import decode, letterbox
from plastic_hotspots.detector.yolo import build_tiny_model, default_model_path

NAMES = {0: "bottle", 1: "bag_film", 2: "other"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    return build_tiny_model(folder / "tiny.pt", NAMES, config_dir=folder / "cfg", spread_scores=True)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, size=(320, 320, 3), dtype=np.uint8) for _ in range(2)]


def _match(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance from a box in ``a`` to its nearest box in ``b`` (pixels)."""
    return float(max(np.abs(b - box).max(axis=1).min() for box in a))


def test_backends_agree(weights: Path, images: list[np.ndarray], tmp_path: Path) -> None:
    results = {}
    for backend in ("pytorch", "onnx", "openvino"):
        det = YoloDetector(
            weights, backend=backend, precision="fp32", imgsz=320, conf=0.5, config_dir=tmp_path / "cfg"
        )
        assert det.names == NAMES
        assert det.model_version.startswith("tiny.pt sha256:")
        assert det.model_version.endswith(f"{backend} fp32")
        results[backend] = det.predict_raw(images[:1])[0]
    torch_raw = results["pytorch"]
    assert len(torch_raw.scores) >= 5
    for backend in ("onnx", "openvino"):
        raw = results[backend]
        assert abs(len(raw.scores) - len(torch_raw.scores)) <= 1, backend
        assert _match(torch_raw.boxes, raw.boxes) < 0.5, backend
        np.testing.assert_allclose(np.sort(raw.scores)[-5:], np.sort(torch_raw.scores)[-5:], atol=1e-3)


def test_detections_are_records_inside_the_image(weights: Path, tmp_path: Path) -> None:
    det = YoloDetector(weights, backend="onnx", imgsz=320, conf=0.05, config_dir=tmp_path / "cfg")
    image = np.random.default_rng(1).integers(0, 255, size=(240, 400, 3), dtype=np.uint8)
    (dets,) = det.predict([image])
    assert dets
    for d in dets:
        assert d.class_name in NAMES.values()
        assert 0.05 < d.score <= 1
        assert 0 <= d.box.x1 < d.box.x2 <= 400
        assert 0 <= d.box.y1 < d.box.y2 <= 240


def test_export_is_cached_and_keyed_by_weights(weights: Path, tmp_path: Path) -> None:
    exports = weights.with_name("tiny.exports")
    YoloDetector(weights, backend="onnx", imgsz=192, config_dir=tmp_path / "cfg")
    (entry,) = [p for p in exports.iterdir() if p.name.endswith("-onnx-192")]
    stamp = (entry / "model.onnx").stat().st_mtime_ns
    t0 = time.perf_counter()
    YoloDetector(weights, backend="onnx", imgsz=192, config_dir=tmp_path / "cfg")
    assert time.perf_counter() - t0 < 3.0
    assert (entry / "model.onnx").stat().st_mtime_ns == stamp  # not exported again
    assert not [p for p in exports.iterdir() if p.name.startswith(".")]  # no temporary left over
    # Other weights in the same place: a new export.
    changed = build_tiny_model(tmp_path / "tiny.pt", NAMES, seed=1, config_dir=tmp_path / "cfg")
    other = YoloDetector(changed, backend="onnx", imgsz=192, config_dir=tmp_path / "cfg")
    assert other.weights_sha256 != YoloDetector(weights, backend="onnx", imgsz=192).weights_sha256
    assert (tmp_path / "tiny.exports" / f"{other.weights_sha256[:16]}-onnx-192" / "model.onnx").is_file()


def test_sliced_inference_on_a_large_image(weights: Path, tmp_path: Path) -> None:
    det = YoloDetector(
        weights, backend="onnx", imgsz=320, conf=0.5, slice_size=320, config_dir=tmp_path / "cfg"
    )
    image = np.random.default_rng(2).integers(0, 255, size=(700, 1000, 3), dtype=np.uint8)
    (raw,) = det.predict_raw([image])
    whole = YoloDetector(weights, backend="onnx", imgsz=320, conf=0.5).predict_raw([image])[0]
    assert len(raw.scores) > len(whole.scores)  # the tiles see more than the downscaled whole
    assert (raw.boxes[:, [0, 2]] >= 0).all()
    assert (raw.boxes[:, [0, 2]] <= 1000).all()
    assert (raw.boxes[:, [1, 3]] >= 0).all()
    assert (raw.boxes[:, [1, 3]] <= 700).all()
    from plastic_hotspots.boxmath import overlap

    for i in range(len(raw.scores)):
        same = (raw.classes == raw.classes[i]) & (np.arange(len(raw.scores)) != i)
        if same.any():
            assert (overlap(raw.boxes[i], raw.boxes[same], "ios") <= 0.5 + 1e-9).all()


def test_letterbox_and_decode_map_boxes_back() -> None:
    image = np.zeros((240, 400, 3), dtype=np.uint8)
    tensor, box = letterbox(image, 320)
    assert tensor.shape == (1, 3, 320, 320)
    assert (box.scale, box.pad_x, box.pad_y) == (0.8, 0.0, 64.0)
    # One anchor predicting a 40x20 box centred at (100, 150) in input pixels, class 1.
    output = np.zeros((1, 4 + 3, 2), dtype=np.float32)
    output[0, :4, 0] = [100, 150, 40, 20]
    output[0, 5, 0] = 0.9
    raw = decode(output, box, conf=0.25, iou=0.5)
    np.testing.assert_allclose(raw.boxes, [[(80) / 0.8, (140 - 64) / 0.8, 120 / 0.8, (160 - 64) / 0.8]])
    assert raw.classes.tolist() == [1]


def test_model_errors(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="does not exist") as info:
        YoloDetector(tmp_path / "missing.pt")
    assert "--model" in info.value.hint
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'") as info:
        YoloDetector(weights, backend="tensorrt")
    assert "pytorch, onnx, openvino" in info.value.hint
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a YOLO detection checkpoint"):
        YoloDetector(bad, config_dir=tmp_path / "cfg")
    for backend in ("onnx", "openvino"):  # exported backends: the file is named as given, not as its copy
        with pytest.raises(
            ModelError, match=f"^{re.escape(str(bad))} is not a YOLO detection checkpoint"
        ) as info:
            YoloDetector(bad, backend=backend, config_dir=tmp_path / "cfg")
        assert "Recommended fixes" not in str(info.value)  # Ultralytics' advice is to download a model
        assert not (tmp_path / "bad.exports").exists()
    monkeypatch.setenv("PLASTIC_HOTSPOTS_MODEL", str(tmp_path / "gone.pt"))
    with pytest.raises(ModelError, match="no litter model") as info:
        default_model_path()
    assert "--model" in info.value.hint
    monkeypatch.setenv("PLASTIC_HOTSPOTS_MODEL", str(weights))
    assert default_model_path() == weights


def test_offline_build_export_and_predict(tmp_path: Path) -> None:
    """A fresh config folder, every socket refused: building, exporting and predicting still work."""
    no_network_site(tmp_path / "site")
    script = f"""
from pathlib import Path
import numpy as np
from plastic_hotspots.detector.yolo import build_tiny_model
from plastic_hotspots.detector.predictor import YoloDetector
cfg = Path({str(tmp_path / "cfg")!r})
w = build_tiny_model(Path({str(tmp_path / "m" / "t.pt")!r}), {{0: "bottle"}}, config_dir=cfg)
img = np.zeros((64, 96, 3), dtype=np.uint8)
for backend in ("pytorch", "onnx", "openvino"):
    det = YoloDetector(w, backend=backend, imgsz=64, config_dir=cfg)
    print(backend, len(det.predict([img])[0]))
"""
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}",
        "HOME": str(tmp_path / "home"),
    }
    env.pop("YOLO_CONFIG_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "network access attempted" not in proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["pytorch", "onnx", "openvino"]


def test_loading_ultralytics_leaves_pillow_alone(weights: Path, tmp_path: Path) -> None:
    """Ultralytics patches PIL.Image.open to fetch a HEIF plugin; a text file must still be `not_an_image`."""
    from plastic_hotspots.detector.errors import IngestError
    from plastic_hotspots.detector.ingest import IngestOptions, discover, load

    YoloDetector(weights, backend="pytorch", imgsz=64, config_dir=tmp_path / "cfg")
    (tmp_path / "notes.jpg").write_text("field notes")
    (item,) = discover([tmp_path / "notes.jpg"], IngestOptions())
    with pytest.raises(IngestError) as info:
        load(item, IngestOptions())
    assert info.value.reason == "not_an_image"
