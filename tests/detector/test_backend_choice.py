"""``--backend auto`` and ``--precision``: what the machine gets, why, and the int8 model on real photos."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from plastic_hotspots.cli import app
from plastic_hotspots.detector import runtime
from plastic_hotspots.detector import settings as settings_module
from plastic_hotspots.detector.calibration import calibration_set, litter_split
from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.settings import (
    BackendFallbackWarning,
    DetectorSettings,
    choose_backend,
    probe_machine,
)

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
HAS_NNCF = importlib.util.find_spec("nncf") is not None
AMX = frozenset({"FP32", "BF16", "INT8"})
AVX2 = frozenset({"FP32", "INT8"})


def test_help_shows_auto_as_the_default_backend_and_precision() -> None:
    result = CliRunner().invoke(app, ["detect", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    backend = text[text.index("--backend") : text.index("--precision")]
    precision = text[text.index("--precision") : text.index("--imgsz")]
    assert "auto (OpenVINO on the CPU, PyTorch on a CUDA GPU; PyTorch when openvino is missing)" in backend
    assert backend.rstrip().endswith("[default: auto]")
    assert "auto (bf16 where the CPU has it, else fp32), fp32, bf16 or int8" in precision
    assert precision.rstrip().endswith("[default: auto]")


@pytest.mark.parametrize(
    ("caps", "gpu", "expected"),
    [
        (AMX, False, ("openvino", "bf16", "cpu")),
        (AVX2, False, ("openvino", "fp32", "cpu")),
        (AMX, True, ("pytorch", "fp32", "0")),
        (None, False, ("pytorch", "fp32", "cpu")),
    ],
)
def test_auto_chooses_by_the_machine(
    caps: frozenset[str] | None, gpu: bool, expected: tuple[str, str, str]
) -> None:
    choice = choose_backend(DetectorSettings(), cpu_caps=caps, gpu=gpu)
    s = choice.settings
    assert (s.backend, s.precision, s.device) == expected
    assert choice.fallback is (caps is None and not gpu)


def test_asked_for_settings_are_kept() -> None:
    asked = DetectorSettings(backend="onnx", precision="fp32", imgsz=320)
    assert choose_backend(asked, cpu_caps=AMX, gpu=True).settings == asked
    assert choose_backend(
        DetectorSettings(backend="openvino"), cpu_caps=AMX, gpu=False
    ).settings.precision == ("bf16")
    # int8 asked with auto: OpenVINO even with a GPU
    int8 = choose_backend(DetectorSettings(precision="int8"), cpu_caps=AVX2, gpu=True).settings
    assert (int8.backend, int8.precision) == ("openvino", "int8")
    assert choose_backend(
        DetectorSettings(backend="pytorch"), cpu_caps=AMX, gpu=False
    ).settings.precision == ("fp32")


def test_bf16_only_where_the_cpu_has_it() -> None:
    with pytest.raises(ModelError, match="this CPU cannot run bf16") as info:
        choose_backend(DetectorSettings(precision="bf16"), cpu_caps=AVX2, gpu=False)
    assert "--precision fp32" in info.value.hint
    with pytest.raises(ModelError, match="needs OpenVINO, which is not installed"):
        choose_backend(DetectorSettings(precision="int8"), cpu_caps=None, gpu=False)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "_nvidia_device_visible", lambda: False)


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")
@pytest.mark.usefixtures("no_gpu")
def test_probe_picks_openvino_when_it_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    choice = probe_machine(DetectorSettings())
    assert choice.settings.backend == "openvino"
    assert not choice.fallback
    # the capability query decides the precision
    monkeypatch.setattr(runtime, "openvino_cpu_capabilities", lambda: AMX)
    assert probe_machine(DetectorSettings()).settings.precision == "bf16"
    monkeypatch.setattr(runtime, "openvino_cpu_capabilities", lambda: AVX2)
    choice = probe_machine(DetectorSettings())
    assert choice.settings.precision == "fp32"
    assert "no bf16" in choice.reason


@pytest.mark.usefixtures("no_gpu")
def test_probe_falls_back_to_pytorch_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    assert runtime.openvino_cpu_capabilities() is None
    choice = probe_machine(DetectorSettings())
    assert (choice.settings.backend, choice.settings.precision) == ("pytorch", "fp32")
    assert choice.fallback
    assert "because openvino is not installed" in choice.reason
    assert "pip install openvino" in choice.reason


@pytest.mark.usefixtures("no_gpu")
def test_the_detector_warns_once_of_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import build_tiny_model

    weights = build_tiny_model(tmp_path / "tiny.pt", {0: "bottle"}, config_dir=tmp_path / "cfg")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.warns(BackendFallbackWarning, match="openvino is not installed") as record:
        det = YoloDetector(weights, imgsz=64, config_dir=tmp_path / "cfg")
    assert len(record) == 1
    assert det.model_version.endswith(" pytorch fp32")
    params = det.parameters()
    assert (params["backend"], params["precision"]) == ("pytorch", "fp32")
    assert "openvino is not installed" in str(params["backend_choice"])


def test_calibration_never_uses_the_excluded_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "river_floating_jakarta" / "images"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "a.jpg")
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CALIBRATION", str(folder))
    with pytest.raises(ModelError, match="river_floating_jakarta"):
        calibration_set()


def test_calibration_is_a_fixed_seeded_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(10):
        Image.new("RGB", (8, 8)).save(tmp_path / f"p{i}.jpg")
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CALIBRATION", str(tmp_path))
    first, again = calibration_set(count=4), calibration_set(count=4)
    assert first == again
    assert len(first.photos) == 4
    assert list(first.photos) == sorted(first.photos)
    assert first.description.startswith("4 of 10 photos from photos of")
    assert calibration_set(count=4, seed=1).photos != first.photos


def test_no_calibration_source_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLASTIC_HOTSPOTS_CALIBRATION", raising=False)
    with pytest.raises(ModelError, match="no calibration photos") as info:
        calibration_set(tmp_path / "missing.yaml", shared=tmp_path)
    assert "PLASTIC_HOTSPOTS_CALIBRATION" in info.value.hint


@pytest.mark.realdata
def test_the_litter_training_split_calibrates(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLASTIC_HOTSPOTS_CALIBRATION", raising=False)
    cal = calibration_set(None, shared=shared_data)
    assert len(cal.photos) == 200
    assert "200 of 275 photos from the train split of trash_collection_self" in cal.description
    held_out = set(litter_split(shared_data, "test")) | set(litter_split(shared_data, "val"))
    assert not held_out & set(cal.photos)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(not (HAS_OPENVINO and HAS_NNCF), reason="openvino and nncf are needed for int8")
def test_int8_of_the_shipped_model_detects_litter(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import shipped_model_path

    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for photo in litter_split(shared_data, "train")[:6]:
        shutil.copy(photo, calibration / photo.name)
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CALIBRATION", str(calibration))
    weights = tmp_path / "model.pt"
    shutil.copy(shipped_model_path(), weights)  # its exports land in tmp_path
    det = YoloDetector(weights, precision="int8", config_dir=tmp_path / "cfg")
    assert (det.settings.backend, det.settings.precision) == ("openvino", "int8")
    assert det.calibration is not None
    assert det.calibration.startswith("6 of 6 photos")
    int8 = list((tmp_path / "model.exports").glob("*-onnx-640/model_openvino_int8.xml"))
    assert len(int8) == 1
    assert int8[0].with_name("int8.json").is_file()
    photo = litter_split(shared_data, "test")[0]
    with Image.open(photo) as img:
        rgb = np.asarray(img.convert("RGB"))
    found = det.predict([rgb])[0]
    fp32 = YoloDetector(weights, backend="openvino", precision="fp32").predict([rgb])[0]
    assert len(found) >= 1
    assert abs(len(found) - len(fp32)) <= 2
    assert {d.class_name for d in found} <= {d.class_name for d in fp32} | {"other_plastic"}
    # cached: a second detector reuses the int8 model and its recorded calibration
    again = YoloDetector(weights, precision="int8", config_dir=tmp_path / "cfg")
    assert again.calibration == det.calibration
