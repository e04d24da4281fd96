"""The detector's one settings record: the command line's defaults, the spec's fields, the checks."""

from __future__ import annotations

import inspect
import pickle
from dataclasses import fields

import pytest

from plastic_hotspots.detector.cli import detect
from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.predictor import YoloSpec
from plastic_hotspots.detector.settings import BACKENDS, DetectorSettings

NAMES = ["backend", "imgsz", "conf", "iou", "device", "slice_size", "slice_overlap", "batch", "precision"]


def test_the_settings_and_their_defaults() -> None:
    assert [f.name for f in fields(DetectorSettings)] == NAMES
    assert DetectorSettings().values() == {
        "backend": "auto", "imgsz": 640, "conf": 0.25, "iou": 0.5, "device": "cpu",
        "slice_size": 0, "slice_overlap": 0.2, "batch": 1, "precision": "auto",
    }  # fmt: skip


def test_the_command_line_defaults_are_the_settings_defaults() -> None:
    options = inspect.signature(detect).parameters
    defaults = DetectorSettings()
    shared = [name for name in NAMES if name in options]
    assert shared == [name for name in NAMES if name != "batch"]  # batch is the runner's --batch-size
    for name in shared:
        assert options[name].default == getattr(defaults, name), name


def test_the_provenance_records_the_settings_that_change_detections() -> None:
    settings = DetectorSettings(backend="onnx", imgsz=320, conf=0.1, iou=0.6, device="0", slice_size=640)
    assert settings.parameters() == {
        "backend": "onnx",
        "imgsz": 320,
        "conf": 0.1,
        "iou": 0.6,
        "slice_size": 640,
        "precision": "auto",
    }


def test_a_spec_is_the_weights_then_the_settings() -> None:
    assert [f.name for f in fields(YoloSpec)] == ["weights", "weights_sha256", *NAMES]
    settings = DetectorSettings(backend="openvino", imgsz=320, slice_size=64, batch=4)
    spec = YoloSpec("/models/a.pt", "ab" * 32, **settings.values())
    assert spec.values() == settings.values()
    assert DetectorSettings(**spec.values()) == settings
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert hash(pickle.loads(pickle.dumps(spec))) == hash(spec)
    assert repr(spec).startswith("YoloSpec(weights='/models/a.pt', weights_sha256='abab")


@pytest.mark.parametrize(
    ("changes", "message", "hint"),
    [
        ({"backend": "tensorrt"}, "unknown backend 'tensorrt'", ", ".join(BACKENDS)),
        ({"slice_size": 31}, "slice size 31 is too small", "at least the model's imgsz"),
        ({"precision": "fp16"}, "unknown precision 'fp16'", "auto, fp32, bf16, int8"),
        ({"backend": "onnx", "precision": "int8"}, "int8 runs on the openvino backend only", "fp32"),
    ],
)
def test_bad_settings_say_how_to_fix_them(changes: dict[str, object], message: str, hint: str) -> None:
    with pytest.raises(ModelError, match=message) as info:
        DetectorSettings(**changes)  # type: ignore[arg-type]
    assert hint in info.value.hint
    with pytest.raises(ModelError, match=message):
        YoloSpec("/models/a.pt", "0" * 64, **changes)  # type: ignore[arg-type]


def test_slice_size_zero_or_from_32_is_accepted() -> None:
    assert DetectorSettings(slice_size=0).slice_size == 0
    assert DetectorSettings(slice_size=32).slice_size == 32
