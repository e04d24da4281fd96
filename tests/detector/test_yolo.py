"""The Ultralytics adapter itself: offline settings, model paths, tiny models, PyTorch input, ONNX export.

The detector built on it (backends agreeing, export cache per weights, slicing, errors) is tested in
``test_predictor.py``; here are the pieces of ``detector/yolo.py`` and a strict no-network run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plastic_hotspots.detector import yolo
from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.yolo import (
    TorchYolo,
    apply_offline_settings,
    build_tiny_model,
    default_model_path,
    export_onnx,
    model_names,
    openvino_consent_file,
    opt_out_openvino_telemetry,
    sha256_of,
    shipped_model_path,
)

NAMES = {0: "bottle", 1: "bag_film", 2: "other"}
ROOT = Path(__file__).resolve().parents[2]
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None  # not imported: that alone phones home
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo")
    return build_tiny_model(folder / "tiny.pt", NAMES, config_dir=folder / "cfg", spread_scores=True)


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No YOLO variables set and a home of its own (OpenVINO's consent file lives there)."""
    for name in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR", "YOLO_VERBOSE"):
        monkeypatch.delenv(name, raising=False)  # restored after the test, whatever the code sets
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_offline_settings_on_a_fresh_folder(fresh_env: Path, tmp_path: Path) -> None:
    config = apply_offline_settings(tmp_path / "cfg")
    assert config == tmp_path / "cfg"
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["YOLO_AUTOINSTALL"] == "False"
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path / "cfg")
    folder = tmp_path / "cfg" / "Ultralytics"
    assert json.loads((folder / "settings.json").read_text(encoding="utf-8")) == {"sync": False}
    import matplotlib

    dejavu = (Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf").read_bytes()
    assert (folder / "Arial.ttf").read_bytes() == dejavu
    assert (folder / "Arial.Unicode.ttf").read_bytes() == dejavu
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left
    if HAS_OPENVINO:
        assert (fresh_env / "intel" / "openvino_telemetry").read_text() == "0"


def test_offline_settings_keep_the_rest_and_are_idempotent(fresh_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cfg" / "Ultralytics"
    folder.mkdir(parents=True)
    settings = folder / "settings.json"
    settings.write_text(json.dumps({"sync": True, "runs_dir": "/data/runs"}), encoding="utf-8")
    apply_offline_settings(tmp_path / "cfg")
    assert json.loads(settings.read_text(encoding="utf-8")) == {"sync": False, "runs_dir": "/data/runs"}
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert apply_offline_settings(tmp_path / "other") == tmp_path / "cfg"  # the folder in effect is kept
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing rewritten
    assert not (tmp_path / "other").exists()
    settings.write_text("{not json", encoding="utf-8")  # a broken file is replaced, not a crash
    apply_offline_settings(tmp_path / "cfg")
    assert json.loads(settings.read_text(encoding="utf-8")) == {"sync": False}


def test_default_config_dir_is_in_the_project_cache(
    fresh_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CACHE", str(tmp_path / "cache"))
    assert apply_offline_settings() == tmp_path / "cache" / "ultralytics"
    assert (tmp_path / "cache" / "ultralytics" / "Ultralytics" / "settings.json").is_file()


@needs_openvino
def test_openvino_telemetry_declined_unless_the_user_chose(fresh_env: Path) -> None:
    consent = openvino_consent_file()
    assert consent == fresh_env / "intel" / "openvino_telemetry"
    assert opt_out_openvino_telemetry() is True
    assert consent.read_text() == "0"
    consent.write_text("1")  # the user opted in with OpenVINO's own tool: their choice stays
    assert opt_out_openvino_telemetry() is False
    assert consent.read_text() == "1"
    consent.write_text("")  # OpenVINO reads an empty file as undecided
    assert opt_out_openvino_telemetry() is True
    assert consent.read_text() == "0"


def test_default_model_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLASTIC_HOTSPOTS_MODEL", raising=False)
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CACHE", str(tmp_path / "cache"))
    assert default_model_path() == shipped_model_path()  # nothing promoted: the shipped baseline
    assert shipped_model_path().stat().st_size > 1_000_000
    monkeypatch.setattr(
        "plastic_hotspots.detector.yolo.shipped_model_path", lambda: tmp_path / "not-shipped.pt"
    )
    with pytest.raises(ModelError, match=r"no litter model at .*cache/models/litter-baseline\.pt") as info:
        default_model_path()
    assert "--model path/to/weights.pt" in info.value.hint
    baseline = tmp_path / "cache" / "models" / "litter-baseline.pt"
    baseline.parent.mkdir(parents=True)
    baseline.write_bytes(b"weights")
    assert default_model_path() == baseline
    monkeypatch.setenv("PLASTIC_HOTSPOTS_MODEL", str(tmp_path / "gone.pt"))  # the variable wins
    with pytest.raises(ModelError, match=r"gone\.pt"):
        default_model_path()


def test_sha256_of(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # over one read block
    (tmp_path / "w.pt").write_bytes(data)
    assert sha256_of(tmp_path / "w.pt") == hashlib.sha256(data).hexdigest()


def _state(path: Path) -> dict[str, Any]:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    assert isinstance(ckpt, dict)
    state: dict[str, Any] = ckpt["model"].state_dict()
    return state


def test_tiny_model_is_deterministic_and_loadable(weights: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    a = build_tiny_model(tmp_path / "a" / "m.pt", {0: "bottle", 1: "cap"}, config_dir=cfg)
    b = build_tiny_model(tmp_path / "b" / "m.pt", {0: "bottle", 1: "cap"}, config_dir=cfg)
    c = build_tiny_model(tmp_path / "c" / "m.pt", {0: "bottle", 1: "cap"}, seed=1, config_dir=cfg)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(bool((sa[k] == sb[k]).all()) for k in sa)
    assert not all(bool((sa[k] == sc[k]).all()) for k in sa)
    scores_out = [k for k in sa if re.fullmatch(r"model\.23\.cv3\.\d\.2\.weight", k)]  # class-score layers
    assert len(scores_out) == 3  # one per detection scale
    assert all(sa[k].shape[0] == 2 for k in scores_out)  # one output per class
    assert model_names(a) == {0: "bottle", 1: "cap"}
    assert model_names(weights) == NAMES


def test_model_names_of_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(ModelError, match="not a YOLO detection checkpoint") as info:
        model_names(bad)
    assert "best.pt" in info.value.hint


def test_torch_backend_gives_ultralytics_bgr(weights: Path) -> None:
    model = TorchYolo(weights, imgsz=96, conf=0.01, iou=0.5, device="cpu")
    assert model.names == NAMES
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, size=(72, 120, 3), dtype=np.uint8)
    rgb[:, :, 0] = 255  # strongly red: channel order matters
    (raw,) = model([rgb])
    assert len(raw.scores) > 0
    assert raw.boxes.dtype == np.float64
    assert raw.classes.dtype == np.int64
    assert set(raw.classes.tolist()) <= set(NAMES)
    assert (raw.boxes[:, [0, 2]] >= 0).all()
    assert (raw.boxes[:, [0, 2]] <= 120).all()
    assert (raw.boxes[:, [1, 3]] >= 0).all()
    assert (raw.boxes[:, [1, 3]] <= 72).all()
    kwargs: dict[str, Any] = {"imgsz": 96, "conf": 0.01, "iou": 0.5, "verbose": False}
    bgr = model.model.predict(np.ascontiguousarray(rgb[:, :, ::-1]), **kwargs)[0].boxes
    np.testing.assert_allclose(raw.boxes, bgr.xyxy.numpy(), atol=1e-4)
    np.testing.assert_allclose(raw.scores, bgr.conf.numpy(), atol=1e-6)
    as_is = model.model.predict(rgb, **kwargs)[0].boxes  # RGB handed over unconverted
    top = min(5, len(raw.scores), len(as_is.conf))
    assert not np.allclose(np.sort(raw.scores)[-top:], np.sort(as_is.conf.numpy())[-top:], atol=1e-4)


def test_onnx_export_is_made_once_and_atomically(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "exports"
    sha = sha256_of(weights)
    loads: list[Path] = []
    real_load = yolo._load_yolo

    def counting(path: Path) -> Any:
        loads.append(path)
        return real_load(path)

    monkeypatch.setattr(yolo, "_load_yolo", counting)
    onnx = export_onnx(weights, 64, sha, cache)
    assert onnx == cache / f"{sha[:16]}-onnx-64" / "model.onnx"
    assert len(loads) == 1
    assert [p.name for p in onnx.parent.iterdir()] == ["model.onnx"]  # the weights copy is gone
    assert [p.name for p in cache.iterdir()] == [onnx.parent.name]  # no temporary folder
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 64, 64]
    assert session.get_outputs()[0].shape[1] == 4 + len(NAMES)
    stamp = onnx.stat().st_mtime_ns
    assert export_onnx(weights, 64, sha, cache) == onnx
    assert len(loads) == 1  # reused: the model was not even loaded
    assert onnx.stat().st_mtime_ns == stamp

    def broken(path: Path) -> Any:
        model = real_load(path)

        def fail(**kwargs: Any) -> str:
            raise RuntimeError("disk full")

        model.export = fail
        return model

    monkeypatch.setattr(yolo, "_load_yolo", broken)
    with pytest.raises(ModelError, match=r"exporting .*tiny\.pt to ONNX failed: disk full") as info:
        export_onnx(weights, 96, sha, cache)
    assert "onnxslim" in info.value.hint
    assert [p.name for p in cache.iterdir()] == [onnx.parent.name]  # nothing half-made left to trust


NO_NETWORK = """
import socket

LOG = {log!r}
_connect = socket.socket.connect


def _refuse(what, args):
    with open(LOG, "a") as f:
        f.write(what + " " + repr(args)[:200] + "\\n")
    raise OSError("network access attempted: " + what)


def _guarded_connect(self, *args):
    if self.family == socket.AF_UNIX:
        return _connect(self, *args)
    _refuse("connect", args)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = lambda self, *args: _refuse("connect_ex", args)
socket.create_connection = lambda *args, **kwargs: _refuse("create_connection", args)
socket.getaddrinfo = lambda *args, **kwargs: _refuse("getaddrinfo", args)
"""

OFFLINE_RUN = """
import socket
from pathlib import Path
import numpy as np
from plastic_hotspots.detector.yolo import apply_offline_settings, build_tiny_model
cfg = apply_offline_settings(Path({cfg!r}))
from plastic_hotspots.detector.predictor import YoloDetector
w = build_tiny_model(Path({weights!r}), {{0: "bottle"}}, config_dir=cfg)
img = np.zeros((64, 96, 3), dtype=np.uint8)
big = np.full((150, 200, 3), 90, dtype=np.uint8)
for round in (1, 2):  # the second round finds the exports cached
    for backend in {backends!r}:
        det = YoloDetector(w, backend=backend, imgsz=64, conf=0.01, config_dir=cfg, slice_size=96)
        print(round, backend, len(det.predict([img])[0]), len(det.predict([big])[0]))
try:  # the guard itself works: a deliberate connection is caught and logged
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    print("probe refused")
"""


def test_nothing_touches_the_network(tmp_path: Path) -> None:
    """Settings, build, export, predict (plain and sliced), cached reuse: no socket is ever opened."""
    log = tmp_path / "attempts.log"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_NETWORK.format(log=str(log)))
    (tmp_path / "home").mkdir()
    backends = ["pytorch", "onnx"] + (["openvino"] if HAS_OPENVINO else [])
    script = OFFLINE_RUN.format(
        cfg=str(tmp_path / "cfg"), weights=str(tmp_path / "m" / "t.pt"), backends=backends
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YOLO_") and k != "CI"},
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}",
        "HOME": str(tmp_path / "home"),  # no OpenVINO consent recorded yet, as on a new machine
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [tuple(line.split()[:2]) for line in lines[:-1]] == [(r, b) for r in "12" for b in backends]
    assert lines[-1] == "probe refused"
    assert log.read_text().splitlines() == ["create_connection (('192.0.2.1', 80),)"]  # the probe only
    assert (tmp_path / "m" / "t.exports").is_dir()
