"""The detector's settings, in one record: their defaults, units and checks.

``detect`` builds a :class:`DetectorSettings` from its options (whose defaults are read from here),
:class:`~plastic_hotspots.detector.predictor.YoloDetector` runs with one, and
:class:`~plastic_hotspots.detector.predictor.YoloSpec` carries one to Dask workers. A new setting is
added here, once; the command line then only declares its option.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from plastic_hotspots.detector.errors import ModelError

BACKENDS = ("pytorch", "onnx", "openvino")
# Settings left out of a detections file's provenance (see DetectorSettings.parameters).
_NOT_RECORDED = {"recorded": False}


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """How the detector runs its model.

    Attributes:
        backend: ``pytorch``, ``onnx`` or ``openvino`` (:data:`BACKENDS`).
        imgsz: Model input size, in pixels.
        conf: Minimum score of a detection, in ``[0, 1]``.
        iou: Overlap (IoU) above which non-maximum suppression drops the weaker box.
        device: ``cpu``, or a CUDA device (``0``) for the pytorch and onnx backends.
        slice_size: Images larger than this many pixels (either side) are also detected on overlapping
            tiles of this size at full resolution; 0 never slices.
        slice_overlap: Fraction of a tile shared with its neighbour.
        batch: Images per call of the pytorch backend.

    Raises:
        ModelError: An unknown backend, or a slice size below 32 pixels (other than 0).
    """

    backend: str = "pytorch"
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.5
    device: str = field(default="cpu", metadata=_NOT_RECORDED)
    slice_size: int = 0
    slice_overlap: float = field(default=0.2, metadata=_NOT_RECORDED)
    batch: int = field(default=1, metadata=_NOT_RECORDED)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ModelError(
                f"unknown backend {self.backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}"
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
