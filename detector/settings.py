"""The detector's settings, in one record: their defaults, units and checks.

``detect`` builds a :class:`DetectorSettings` from its options (whose defaults are read from here),
:class:`~plastic_hotspots.detector.predictor.YoloDetector` runs with one, and
:class:`~plastic_hotspots.detector.predictor.YoloSpec` carries one to Dask workers. A new setting is
added here, once; the command line then only declares its option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from plastic_hotspots.detector.errors import ModelError

BACKENDS = ("auto", "pytorch", "onnx", "openvino")
#: Numeric precisions of inference: ``bf16`` and ``int8`` run on the openvino backend only.
PRECISIONS = ("auto", "fp32", "bf16", "int8")
_OPENVINO_ONLY = ("bf16", "int8")
# Settings left out of a detections file's provenance (see DetectorSettings.parameters).
_NOT_RECORDED = {"recorded": False}


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """How the detector runs its model.

    Attributes:
        backend: ``auto`` (see :func:`choose_backend`), ``pytorch``, ``onnx`` or ``openvino``
            (:data:`BACKENDS`).
        imgsz: Model input size, in pixels.
        conf: Minimum score of a detection, in ``[0, 1]``.
        iou: Overlap (IoU) above which non-maximum suppression drops the weaker box.
        device: ``cpu``, or a CUDA device (``0``) for the pytorch and onnx backends.
        slice_size: Images larger than this many pixels (either side) are also detected on overlapping
            tiles of this size at full resolution; 0 never slices.
        slice_overlap: Fraction of a tile shared with its neighbour.
        batch: Images per call of the pytorch backend.
        precision: ``auto`` (the machine's best: bf16 where OpenVINO reports the CPU can, else fp32),
            ``fp32``, ``bf16`` or ``int8`` (an NNCF post-training quantization), :data:`PRECISIONS`;
            bf16 and int8 need the openvino backend.

    Raises:
        ModelError: An unknown backend or precision, bf16 or int8 asked of a backend other than openvino,
            or a slice size below 32 pixels (other than 0).
    """

    backend: str = "auto"
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.5
    device: str = field(default="cpu", metadata=_NOT_RECORDED)
    slice_size: int = 0
    slice_overlap: float = field(default=0.2, metadata=_NOT_RECORDED)
    batch: int = field(default=1, metadata=_NOT_RECORDED)
    precision: str = "auto"  # last: positional callers of the older fields keep working

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ModelError(
                f"unknown backend {self.backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}"
            )
        if self.precision not in PRECISIONS:
            raise ModelError(
                f"unknown precision {self.precision!r}", hint=f"choose one of: {', '.join(PRECISIONS)}"
            )
        if self.precision in _OPENVINO_ONLY and self.backend not in ("auto", "openvino"):
            raise ModelError(
                f"precision {self.precision} runs on the openvino backend only, not {self.backend}",
                hint=f"use --backend openvino (or auto) with --precision {self.precision}, "
                "or --precision fp32",
            )
        if isinstance(self.imgsz, bool) or not isinstance(self.imgsz, int) or not 32 <= self.imgsz <= 8192:
            raise ModelError(
                f"--imgsz must be a whole number of pixels from 32 to 8192, got {self.imgsz!r}",
                hint="use the size the model was trained at (640 for the shipped model), a multiple of 32",
            )
        for name, value, usual in (
            ("conf", self.conf, 0.25),
            ("iou", self.iou, 0.5),
            ("slice-overlap", self.slice_overlap, 0.2),
        ):
            top = 0.95 if name == "slice-overlap" else 1.0
            if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= top):
                raise ModelError(
                    f"--{name} must be a fraction in [0, {top:g}], got {value!r}",
                    hint=f"e.g. --{name} {usual}",
                )
        if self.slice_size and self.slice_size < 32:
            raise ModelError(
                f"slice size {self.slice_size} is too small", hint="use 0 (off) or at least the model's imgsz"
            )

    def values(self) -> dict[str, Any]:
        """The settings by name, in the order above (a subclass's own fields left out)."""
        return {f.name: getattr(self, f.name) for f in fields(DetectorSettings)}

    def parameters(self) -> dict[str, Any]:
        """The settings a detections file's provenance records, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(DetectorSettings)
            if f.metadata.get("recorded", True)
        }


TRACKERS = ("bytetrack.yaml",)  # tracker configs shipped inside Ultralytics that the tracking pass runs


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    """How ``detect --track-items`` follows items through a video so that each counts once.

    Attributes:
        enabled: Run the tracking pass over every video (off: only the sampled frames are detected).
        every_s: Seconds between the frames the tracker sees; denser than the sampling (``--every-s``),
            so an item moves little between two of them. Rounded to whole frames, at least one.
        tracker: The Ultralytics tracker config (:data:`TRACKERS`), read from inside the package.

    Raises:
        ModelError: A tracking interval that is not a positive number, or an unknown tracker.
    """

    enabled: bool = False
    every_s: float = 0.2
    tracker: str = "bytetrack.yaml"

    def __post_init__(self) -> None:
        if not (self.every_s > 0 and self.every_s < float("inf")):
            raise ModelError(
                f"the tracking interval must be a positive number of seconds, got {self.every_s}",
                hint="pass e.g. --track-every-s 0.2 (5 frames a second)",
            )
        if self.tracker not in TRACKERS:
            raise ModelError(
                f"unknown tracker {self.tracker!r}", hint=f"choose one of: {', '.join(TRACKERS)}"
            )


class BackendFallbackWarning(UserWarning):
    """``backend=auto`` fell back to PyTorch on the CPU because OpenVINO is not installed."""


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """What ``auto`` became on this machine, and why.

    Attributes:
        settings: The settings with ``backend`` and ``precision`` resolved (never ``auto``).
        reason: One line saying why, for the console and the provenance.
        fallback: PyTorch was chosen only because OpenVINO is missing.
    """

    settings: DetectorSettings
    reason: str
    fallback: bool = False


def choose_backend(
    settings: DetectorSettings, *, cpu_caps: frozenset[str] | None, gpu: bool
) -> BackendChoice:
    """Resolve ``auto`` backend and precision from what this machine has (pure: the probes are arguments).

    ``auto`` backend: PyTorch on the CUDA GPU where there is one (device ``0`` unless ``device`` already
    names a CUDA device), else OpenVINO on the CPU, else (OpenVINO missing) PyTorch on the CPU.
    ``auto`` precision: on OpenVINO's CPU, bf16 where the CPU reports it (``OPTIMIZATION_CAPABILITIES``
    has ``BF16``: AVX-512 BF16 or AMX), else fp32; fp32 on the other backends.

    Args:
        settings: The asked-for settings.
        cpu_caps: OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES``; ``None`` when OpenVINO is not installed.
        gpu: Whether PyTorch sees a CUDA GPU.

    Raises:
        ModelError: bf16 asked of a CPU without it, or bf16/int8 asked where OpenVINO is missing.
    """
    backend, precision, device = settings.backend, settings.precision, settings.device
    reasons: list[str] = []
    fallback = False
    if backend == "auto":
        if precision in _OPENVINO_ONLY:
            if cpu_caps is None:
                raise ModelError(
                    f"precision {precision} needs OpenVINO, which is not installed",
                    hint="pip install openvino",
                )
            backend = "openvino"
            reasons.append(f"openvino: {precision} was asked for")
        elif gpu:
            backend = "pytorch"
            device = device if device not in ("cpu", "CPU") else "0"
            reasons.append(f"pytorch on CUDA device {device}: a GPU is here")
        elif cpu_caps is not None:
            backend = "openvino"
            reasons.append("openvino: the fastest CPU backend (BENCHMARKS.md)")
        else:
            backend = "pytorch"
            fallback = True
            reasons.append(
                "pytorch on the CPU, because openvino is not installed: detection is about 2x slower "
                "than it could be (pip install openvino)"
            )
    if precision == "auto":
        if backend == "openvino" and cpu_caps is not None and "BF16" in cpu_caps:
            precision = "bf16"
            reasons.append("bf16: the CPU supports it (OpenVINO reports BF16)")
        else:
            precision = "fp32"
            if backend == "openvino":
                reasons.append("fp32: the CPU has no bf16 (AVX-512 BF16 or AMX)")
    if backend == "openvino" and precision == "bf16" and cpu_caps is not None and "BF16" not in cpu_caps:
        raise ModelError(
            "this CPU cannot run bf16 (OpenVINO reports no BF16: it needs AVX-512 BF16 or AMX)",
            hint="use --precision fp32, int8 or auto",
        )
    resolved = replace(settings, backend=backend, precision=precision, device=device)
    return BackendChoice(resolved, "; ".join(reasons) or "as asked", fallback)


def probe_machine(settings: DetectorSettings) -> BackendChoice:
    """:func:`choose_backend` with this machine's OpenVINO CPU capabilities and CUDA GPU, probed lazily.

    OpenVINO is probed only when ``auto`` or ``bf16`` needs it, and PyTorch (for CUDA) only when an
    NVIDIA device is visible, so a CPU machine never imports PyTorch to decide.
    """
    from plastic_hotspots.detector import runtime

    needs_caps = "auto" in (settings.backend, settings.precision) or (
        settings.backend == "openvino" and settings.precision == "bf16"
    )
    caps = runtime.openvino_cpu_capabilities() if needs_caps else None
    gpu = False
    if settings.backend == "auto" and settings.precision not in _OPENVINO_ONLY and _nvidia_device_visible():
        from plastic_hotspots.detector.yolo import cuda_available

        gpu = cuda_available()
    return choose_backend(settings, cpu_caps=caps, gpu=gpu)


def _nvidia_device_visible() -> bool:
    import os
    from pathlib import Path

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()
