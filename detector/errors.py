"""Errors of the detector stage.

:class:`IngestError` is the one error a batch survives: the input goes to the rejects table with its
``reason`` (a short, stable code) and the run goes on. The others stop the run with a hint.
"""

from __future__ import annotations

from typing import Literal

from plastic_hotspots.errors import PlasticHotspotsError

RejectReason = Literal[
    "empty_file",  # zero bytes
    "not_an_image",  # the bytes are not an image, video or raster we can read
    "truncated",  # the file ends before the image data does
    "corrupt",  # the image data cannot be decoded
    "too_large",  # more pixels than the decompression-bomb limit
    "impossible_gps",  # coordinates outside the globe, or malformed GPS tags
    "no_position",  # no EXIF GPS, no sidecar row, no GPX coverage, no georeference
    "unreadable",  # the file cannot be opened (permissions, I/O error)
]


class DetectorError(PlasticHotspotsError):
    """Base of the detector stage's errors."""


class IngestError(DetectorError):
    """One input cannot be used; the batch records it as rejected and goes on.

    Args:
        reason: A stable short code (see ``RejectReason``), written to the rejects table.
        message: What was wrong with this input.
        hint: How to fix it.
    """

    def __init__(self, reason: RejectReason, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.reason: RejectReason = reason


class ModelError(DetectorError):
    """The model cannot be loaded, exported or run (missing weights, unknown backend ...)."""
