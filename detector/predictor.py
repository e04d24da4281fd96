"""The litter detector: a YOLO model on a chosen backend, with sliced inference for large images.

Backends (one registry, :data:`~plastic_hotspots.detector.settings.BACKENDS`):

* ``pytorch``: Ultralytics' own predictor on the ``.pt`` weights;
* ``onnx``: the weights exported once to ONNX, run on ONNX Runtime;
* ``openvino``: the same ONNX export read by OpenVINO and saved as OpenVINO IR, run by OpenVINO in
  fp32, bf16 or int8 (an NNCF quantization of the IR on calibration photos, cached beside it);
* ``auto``: resolved on this machine by :func:`~plastic_hotspots.detector.settings.probe_machine`.

Exports are cached next to the weights (``<weights>.exports/``, or the project cache when that folder
is not writable), keyed by the weights' SHA-256, so changed weights export again and unchanged ones
never do. A cached export also skips importing PyTorch at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.runtime import RawDetections, Runtime, decode, letterbox
from plastic_hotspots.detector.settings import DetectorSettings
from plastic_hotspots.detector.slicing import merge_tiles, shift_boxes, tile_windows
from plastic_hotspots.records import BBox, Detection

Infer = Callable[[list[npt.NDArray[np.uint8]]], list[RawDetections]]


def _export_dir(weights: Path) -> Path:
    beside = weights.with_name(weights.stem + ".exports")
    try:
        beside.mkdir(exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside
    except OSError:
        pass
    from plastic_hotspots.detector.yolo import cache_root

    return cache_root() / "exports"


def _onnx_export(weights: Path, imgsz: int, sha: str, config_dir: Path | None) -> tuple[Path, dict[int, str]]:
    """Path of the cached ONNX export and the class names; exports on first use."""
    cache = _export_dir(weights)
    entry = cache / f"{sha[:16]}-onnx-{imgsz}"
    meta = entry / "meta.json"
    if not meta.is_file():
        from plastic_hotspots.detector.yolo import apply_offline_settings, export_onnx, model_names

        apply_offline_settings(config_dir)
        try:
            names = model_names(weights)  # first: a bad checkpoint is named as given, not as its copy
            export_onnx(weights, imgsz, sha, cache)
        except BaseException:
            with contextlib.suppress(OSError):
                cache.rmdir()  # a `<weights>.exports` folder made for nothing goes again (if empty)
            raise
        tmp = entry / "meta.json.tmp"
        tmp.write_text(json.dumps({"names": names, "imgsz": imgsz, "sha256": sha}), encoding="utf-8")
        tmp.replace(meta)
    data = json.loads(meta.read_text(encoding="utf-8"))
    return entry / "model.onnx", {int(k): str(v) for k, v in data["names"].items()}


def _openvino_ir(onnx: Path) -> Path:
    """OpenVINO IR made from the ONNX export (by the OpenVINO runtime itself; no converter, no telemetry)."""
    xml = onnx.with_name("model_openvino.xml")
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    from plastic_hotspots.detector.runtime import save_openvino_ir

    tmp = Path(tempfile.mkdtemp(prefix=".ir-", dir=onnx.parent))
    try:
        save_openvino_ir(onnx, tmp / xml.name)
        (tmp / xml.name).with_suffix(".bin").replace(xml.with_suffix(".bin"))
        (tmp / xml.name).replace(xml)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return xml


def _openvino_int8(xml: Path, weights: Path, imgsz: int) -> tuple[Path, str]:
    """The int8 IR quantized from the fp32 IR (made once, beside it) and its calibration set's description."""
    out = xml.with_name("model_openvino_int8.xml")
    meta = xml.with_name("int8.json")
    if out.is_file() and out.with_suffix(".bin").is_file() and meta.is_file():
        return out, str(json.loads(meta.read_text(encoding="utf-8"))["calibration"])
    from plastic_hotspots.detector.calibration import calibration_set, calibration_tensors
    from plastic_hotspots.detector.runtime import quantize_openvino_int8
    from plastic_hotspots.detector.yolo import model_train_data

    calibration = calibration_set(model_train_data(weights))
    tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=xml.parent))
    try:
        quantize_openvino_int8(xml, tmp / out.name, calibration_tensors(calibration.photos, imgsz))
        record = {"calibration": calibration.description, "photos": [p.name for p in calibration.photos]}
        (tmp / meta.name).write_text(json.dumps(record, indent=1), encoding="utf-8")
        (tmp / out.name).with_suffix(".bin").replace(out.with_suffix(".bin"))
        (tmp / out.name).replace(out)
        (tmp / meta.name).replace(meta)  # last: it marks the int8 model complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, calibration.description


class ExportedYolo:
    """An exported model on ONNX Runtime or OpenVINO, with letterboxing and decoding in numpy."""

    def __init__(self, runtime: Runtime, *, imgsz: int, conf: float, iou: float) -> None:
        self.runtime, self.imgsz, self.conf, self.iou = runtime, imgsz, conf, iou

    def __call__(self, images: list[npt.NDArray[np.uint8]]) -> list[RawDetections]:
        """Detections per RGB image."""
        out = []
        for image in images:
            tensor, box = letterbox(image, self.imgsz)
            out.append(decode(self.runtime(tensor), box, self.conf, self.iou))
        return out


class YoloDetector:
    """A litter detector: YOLO weights on one backend, optionally slicing large images.

    Args:
        weights: The ``.pt`` weights (class names are read from them).
        settings: Backend, input size, thresholds, device, slicing and batch (see
            :class:`~plastic_hotspots.detector.settings.DetectorSettings`); its defaults if None.
        config_dir: Ultralytics' settings folder (created; keeps it offline).
        threads: Inference threads (default: the backend's own choice, every core).
        **changes: Settings to change from ``settings``, by name (``backend="onnx", imgsz=320``).

    Raises:
        ModelError: Missing weights, an unknown backend, a slice size below 32, or a backend whose
            package is not installed.
    """

    def __init__(
        self,
        weights: Path,
        settings: DetectorSettings | None = None,
        *,
        config_dir: Path | None = None,
        threads: int | None = None,
        **changes: Any,
    ) -> None:
        weights = Path(weights)
        settings = replace(settings or DetectorSettings(), **changes)
        if not weights.is_file():
            raise ModelError(
                f"model file {weights} does not exist",
                hint="pass --model with the path of YOLO weights (.pt), e.g. runs/train/weights/best.pt",
            )
        if weights.suffix != ".pt":
            raise ModelError(
                f"{weights} is not PyTorch weights (.pt)", hint="pass the .pt file; exports are made from it"
            )
        from plastic_hotspots.detector.settings import BackendFallbackWarning, probe_machine
        from plastic_hotspots.detector.yolo import apply_offline_settings, sha256_of

        # Before any backend library is imported: Ultralytics offline, OpenVINO telemetry declined.
        apply_offline_settings(config_dir)
        choice = probe_machine(settings)
        if choice.fallback:
            import warnings

            warnings.warn(choice.reason, BackendFallbackWarning, stacklevel=2)
        settings = choice.settings
        #: Why the backend and precision are what they are (``auto`` resolved here).
        self.choice = choice.reason
        #: How the int8 model was calibrated (``None`` for other precisions).
        self.calibration: str | None = None
        self.weights = weights
        self.settings = settings if settings.batch >= 1 else replace(settings, batch=1)
        self.weights_sha256 = sha256_of(weights)
        self._infer: Infer
        backend, imgsz = settings.backend, settings.imgsz
        if backend == "pytorch":
            from plastic_hotspots.detector.yolo import TorchYolo

            torch_model = TorchYolo(
                weights,
                imgsz=imgsz,
                conf=settings.conf,
                iou=settings.iou,
                device=settings.device,
                threads=threads,
            )
            self._names = torch_model.names
            self._infer = torch_model
        else:
            self._check_package(backend)
            onnx, self._names = _onnx_export(weights, imgsz, self.weights_sha256, config_dir)
            runtime: Runtime
            if backend == "onnx":
                from plastic_hotspots.detector.runtime import OnnxRuntime

                runtime = OnnxRuntime(onnx, settings.device, threads)
            else:
                from plastic_hotspots.detector.runtime import OpenVinoRuntime

                xml = _openvino_ir(onnx)
                if settings.precision == "int8":
                    xml, self.calibration = _openvino_int8(xml, weights, imgsz)
                runtime = OpenVinoRuntime(xml, settings.device, threads, precision=settings.precision)
            self._infer = ExportedYolo(runtime, imgsz=imgsz, conf=settings.conf, iou=settings.iou)

    @staticmethod
    def _check_package(backend: str) -> None:
        import importlib.util

        module = {"onnx": "onnxruntime", "openvino": "openvino"}[backend]
        if importlib.util.find_spec(module) is None:
            extra = "pip install 'plastic-hotspots[detect]'" if backend == "onnx" else "pip install openvino"
            raise ModelError(f"the {backend} backend needs the {module} package", hint=extra)

    @property
    def names(self) -> dict[int, str]:
        """Class names by id."""
        return dict(self._names)

    @property
    def model_version(self) -> str:
        """Weights file name and hash, the backend and the precision."""
        s = self.settings
        return f"{self.weights.name} sha256:{self.weights_sha256[:12]} {s.backend} {s.precision}"

    def parameters(self) -> dict[str, str | int | float | bool | None]:
        """What a detections file's provenance records of this detector.

        Its resolved settings, why ``auto`` chose them, and (int8) the calibration set.
        """
        out: dict[str, str | int | float | bool | None] = dict(self.settings.parameters())
        out["backend_choice"] = self.choice
        if self.calibration is not None:
            out["int8_calibration"] = self.calibration
        return out

    def spec(self) -> YoloSpec:
        """How to build this detector again in another process (a Dask worker)."""
        return YoloSpec(str(self.weights.resolve()), self.weights_sha256, **self.settings.values())

    def _raw(self, images: list[npt.NDArray[np.uint8]]) -> list[RawDetections]:
        out: list[RawDetections] = []
        batch = self.settings.batch
        for k in range(0, len(images), batch):
            out.extend(self._infer(images[k : k + batch]))
        return out

    def _sliced(self, image: npt.NDArray[np.uint8]) -> RawDetections:
        h, w = image.shape[:2]
        windows = tile_windows(w, h, self.settings.slice_size, self.settings.slice_overlap)
        crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
        parts = self._raw([image, *crops])  # the whole image too, for litter larger than a tile
        boxes = np.concatenate(
            [parts[0].boxes]
            + [shift_boxes(p.boxes, x0, y0) for p, (x0, y0, _, _) in zip(parts[1:], windows, strict=True)]
        )
        scores = np.concatenate([p.scores for p in parts])
        classes = np.concatenate([p.classes for p in parts])
        keep = merge_tiles(boxes, scores, classes)
        return RawDetections(boxes[keep], scores[keep], classes[keep])

    def predict_raw(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[RawDetections]:
        """Detections per RGB image as arrays (sliced where the image is larger than ``slice_size``)."""
        images = list(images)
        size = self.settings.slice_size
        big = [size > 0 and max(img.shape[:2]) > size for img in images]
        plain = self._raw([img for img, b in zip(images, big, strict=True) if not b])
        it = iter(plain)
        return [self._sliced(img) if b else next(it) for img, b in zip(images, big, strict=True)]

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        """Detections per RGB ``(H, W, 3)`` uint8 image, boxes in the image's pixels."""
        out = []
        for raw in self.predict_raw(images):
            dets = []
            for (x1, y1, x2, y2), score, cls in zip(
                raw.boxes.tolist(), raw.scores.tolist(), raw.classes.tolist(), strict=True
            ):
                if x2 > x1 and y2 > y1:
                    dets.append(
                        Detection(BBox(x1, y1, x2, y2), self._names.get(int(cls), str(cls)), float(score))
                    )
            out.append(dets)
        return out


@dataclass(frozen=True)
class _Weights:
    """The weights file of a :class:`YoloSpec` and its SHA-256 (the spec's first two fields)."""

    weights: str
    weights_sha256: str


@dataclass(frozen=True)
class YoloSpec(DetectorSettings, _Weights):
    """The weights and settings of a :class:`YoloDetector`, to build it again on a Dask worker.

    Its fields are ``weights`` and ``weights_sha256``, then those of :class:`DetectorSettings` in their
    order. The weights are found on the worker at the same absolute path as on the client (a shared
    file system), and must have the same SHA-256. Ultralytics' settings go to the worker's own project
    cache.
    """

    def load(self, threads: int) -> YoloDetector:
        """The detector, with ``threads`` inference threads.

        Raises:
            ModelError: The weights cannot be read here, or differ from the client's.
        """
        weights = Path(self.weights)
        host = platform.node()
        if not os.access(weights, os.R_OK) or not weights.is_file():
            raise ModelError(
                f"the Dask worker on {host} cannot read the model file {weights}",
                hint="put the model on a file system every worker mounts at the same path as this machine "
                "(or copy it to that path on each worker), and pass that path to --model",
            )
        detector = YoloDetector(weights, DetectorSettings(**self.values()), threads=threads)
        if detector.weights_sha256 != self.weights_sha256:
            raise ModelError(
                f"the model file {weights} on {host} is not the one the run started with "
                f"(sha256 {detector.weights_sha256[:12]}, expected {self.weights_sha256[:12]})",
                hint="give every worker the same weights file (a shared file system), then --resume",
            )
        return detector
