"""Exported YOLO models run without PyTorch: ONNX Runtime and OpenVINO backends.

Both take the same letterboxed input and give the same raw output as the exported model
(``(1, 4 + classes, anchors)``: box centre, size and per-class scores in input pixels), so the
pre- and post-processing here is shared and pure: :func:`letterbox` and :func:`decode`.
"""

from __future__ import annotations

import os
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


class OpenVinoRuntime:
    """An OpenVINO IR model compiled for the CPU, tuned for latency.

    ``threads`` bounds its inference threads (default: OpenVINO's choice, every core).
    """

    def __init__(self, xml: Path, device: str = "cpu", threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelError("the openvino backend needs openvino", hint="pip install openvino") from exc
        core = ov.Core()
        model = core.read_model(str(xml))
        target = "GPU" if device not in {"cpu", "CPU"} and "GPU" in core.available_devices else "CPU"
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
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
