"""Exported YOLO models run without PyTorch: ONNX Runtime and OpenVINO backends.

Both take the same letterboxed input and give the same raw output as the exported model
(``(1, 4 + classes, anchors)``: box centre, size and per-class scores in input pixels), so the
pre- and post-processing here is shared and pure: :func:`letterbox` and :func:`decode`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plastic_hotspots.boxmath import FloatArray, IntArray
from plastic_hotspots.detector.boxes import nms
from plastic_hotspots.detector.errors import ModelError

PAD_VALUE = 114  # grey padding, as the models were trained with


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Detections of one image as arrays: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), ``classes`` (N,)."""

    boxes: FloatArray
    scores: FloatArray
    classes: IntArray

    @staticmethod
    def empty() -> RawDetections:
        """No detections."""
        return RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the square model input: ``input = image * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def letterbox(image: npt.NDArray[np.uint8], size: int) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """Fit an RGB image into a ``size x size`` input, keeping its aspect ratio and padding with grey.

    Returns:
        The ``(1, 3, size, size)`` float32 input in [0, 1], and how to map boxes back.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = (
        cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if (new_w, new_h) != (w, h)
        else image
    )
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    left, top = round(pad_x - 0.1), round(pad_y - 0.1)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    tensor *= np.float32(1 / 255)
    return tensor, Letterbox(scale, float(left), float(top), w, h)


def decode(
    output: npt.NDArray[np.floating[Any]], box: Letterbox, conf: float, iou: float, max_det: int = 300
) -> RawDetections:
    """Boxes in image pixels from one image's raw model output ``(4 + classes, anchors)``."""
    pred = np.asarray(output, dtype=np.float32)
    if pred.ndim == 3:
        pred = pred[0]
    scores_all = pred[4:]
    classes = scores_all.argmax(axis=0)
    scores = scores_all[classes, np.arange(scores_all.shape[1])]
    mask = scores > conf
    if not mask.any():
        return RawDetections.empty()
    cx, cy, bw, bh = pred[0, mask], pred[1, mask], pred[2, mask], pred[3, mask]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float64)
    scores_m = scores[mask].astype(np.float64)
    classes_m = classes[mask].astype(np.int64)
    keep = nms(boxes, scores_m, classes_m, iou, max_keep=max_det)
    boxes = boxes[keep]
    boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - box.pad_x) / box.scale, 0, box.width)
    boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - box.pad_y) / box.scale, 0, box.height)
    return RawDetections(boxes, scores_m[keep], classes_m[keep])


class Runtime(Protocol):
    """A loaded model that maps a letterboxed input to the raw output."""

    def __call__(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw output for a ``(1, 3, S, S)`` input."""
        ...


def _threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class OnnxRuntime:
    """An ONNX model on ONNX Runtime's CPU (or CUDA, when asked and available) execution provider.

    ``threads`` bounds its intra-op thread pool (default: every core this process may use).
    """

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError(
                "the onnx backend needs onnxruntime", hint="pip install 'plastic-hotspots[detect]'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw output for a ``(1, 3, S, S)`` input."""
        out: npt.NDArray[np.float32] = self.session.run(None, {self.input_name: tensor})[0]
        return out


#: The project's precision names -> OpenVINO's ``INFERENCE_PRECISION_HINT`` (an int8 model's layers that
#: were left unquantized run in f32).
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def openvino_cpu_capabilities() -> frozenset[str] | None:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (``BF16``, ``INT8``, ``FP32`` ...).

    ``None`` when OpenVINO cannot be imported. Call after
    :func:`~plastic_hotspots.detector.yolo.apply_offline_settings` (importing OpenVINO may send telemetry).
    """
    try:
        import openvino as ov
    except ImportError:
        return None
    return frozenset(str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVinoRuntime:
    """An OpenVINO IR model compiled for the CPU, tuned for latency, at a given precision.

    ``threads`` bounds its inference threads (default: OpenVINO's choice, every core). ``precision``
    (``fp32``, ``bf16`` or ``int8``) sets the inference precision hint; an int8 model is one quantized
    beforehand (:func:`quantize_openvino_int8`).
    """

    def __init__(
        self, xml: Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32"
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("the openvino backend needs openvino", hint="pip install openvino") from exc
        core = ov.Core()
        model = core.read_model(str(xml))
        target = "GPU" if device not in {"cpu", "CPU"} and "GPU" in core.available_devices else "CPU"
        if precision not in OPENVINO_HINTS:
            raise ModelError(
                f"unknown precision {precision!r}", hint=f"choose one of: {', '.join(OPENVINO_HINTS)}"
            )
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
        }
        if threads and target == "CPU":
            # Bounded, and not pinned: OpenVINO pins its threads to the first cores otherwise, so the
            # one-thread workers of a machine would all run on the same core.
            config.update({"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False})
        self.compiled = core.compile_model(model, target, config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw output for a ``(1, 3, S, S)`` input."""
        result = self.request.infer({0: tensor})
        out: npt.NDArray[np.float32] = np.asarray(next(iter(result.values())))
        return out


def save_openvino_ir(onnx: Path, xml: Path) -> None:
    """Write OpenVINO IR (``.xml`` + ``.bin``) of an ONNX model, read by the OpenVINO runtime itself.

    The runtime's own reader is used rather than the model converter, which sends telemetry.
    """
    try:
        import openvino as ov
    except ImportError as exc:
        raise ModelError("the openvino backend needs openvino", hint="pip install openvino") from exc
    ov.save_model(ov.Core().read_model(str(onnx)), str(xml), compress_to_fp16=False)


def _head_prefix(model: Any) -> str | None:
    """The exported name prefix of the model's last module (the YOLO detect head): ``/model.22/``."""
    numbers = [
        int(m.group(1))
        for op in model.get_ops()
        if (m := re.match(r"/model\.(\d+)/", op.get_friendly_name()))
    ]
    return f"/model.{max(numbers)}/" if numbers else None


def quantize_openvino_int8(
    xml: Path, out_xml: Path, tensors: Sequence[npt.NDArray[np.float32]], *, fast: bool = False
) -> None:
    """Write an int8 OpenVINO IR of ``xml``, post-training quantized by NNCF on the calibration ``tensors``.

    The detect head's box arithmetic (its adds, subtractions, multiplications, divisions, the DFL and the
    sigmoid) is left in floating point, as Ultralytics' own int8 export does: quantizing the box
    coordinates in input pixels would cost far more accuracy than it saves time.

    Args:
        xml: The fp32 OpenVINO IR.
        out_xml: Where to write the int8 IR (``.xml`` + ``.bin``).
        tensors: Letterboxed ``(1, 3, S, S)`` inputs of calibration photos.
        fast: Skip the bias correction (tests on a handful of photos).

    Raises:
        ModelError: NNCF or OpenVINO is not installed, or there are no calibration tensors.
    """
    if not tensors:
        raise ModelError("no calibration photos for the int8 quantization", hint="give at least one photo")
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise ModelError(
            "the int8 precision needs openvino and nncf", hint="pip install 'plastic-hotspots[detect]'"
        ) from exc
    model = ov.Core().read_model(str(xml))
    head = _head_prefix(model)
    ignored = None
    if head is not None:
        h = re.escape(head)
        ignored = nncf.IgnoredScope(
            patterns=[f".*{h}(Add|Sub|Mul|Div)(_\\d+)?", f".*{h}dfl/.*"],
            types=["Sigmoid"],
            validate=False,
        )
    logging.getLogger("nncf").setLevel(logging.WARNING)  # not one line per operation left in float
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(tensors)),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(tensors),
        fast_bias_correction=True,
        ignored_scope=ignored,
        advanced_parameters=nncf.AdvancedQuantizationParameters(disable_bias_correction=fast),
    )
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
