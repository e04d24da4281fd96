"""Images, video and rasters -> geotagged litter detections.

Importing this package does not import torch or ultralytics; the model adapter is loaded only when
detection runs. The names in ``__all__`` are the stage's entry points, each imported from its module
on first use.
"""

from typing import TYPE_CHECKING

from plastic_hotspots.lazy import lazy_names

if TYPE_CHECKING:
    from plastic_hotspots.detector.errors import DetectorError, IngestError, ModelError
    from plastic_hotspots.detector.ingest import IngestOptions
    from plastic_hotspots.detector.predictor import YoloDetector, YoloSpec
    from plastic_hotspots.detector.run import RunOptions, RunSummary, run_detection
    from plastic_hotspots.detector.settings import DetectorSettings
    from plastic_hotspots.detector.yolo import default_model_path

__all__ = [
    "DetectorError",
    "DetectorSettings",
    "IngestError",
    "IngestOptions",
    "ModelError",
    "RunOptions",
    "RunSummary",
    "YoloDetector",
    "YoloSpec",
    "default_model_path",
    "run_detection",
]

# Hidden from type checkers, which read the imports above (so a misspelt name is still an error).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(
        __name__,
        {
            "errors": ("DetectorError", "IngestError", "ModelError"),
            "ingest": ("IngestOptions",),
            "predictor": ("YoloDetector", "YoloSpec"),
            "run": ("RunOptions", "RunSummary", "run_detection"),
            "settings": ("DetectorSettings",),
            "yolo": ("default_model_path",),
        },
    )
