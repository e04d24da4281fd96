"""Sliced inference: tiles with overlap over an image much larger than the model input.

Small litter in a 4K frame or a drone photo shrinks to a few pixels when the whole image is
resized to the model's input. Detecting on overlapping tiles at full resolution, shifting the boxes
back and merging the duplicates found in two tiles keeps it visible.
"""

from __future__ import annotations

import math

import numpy as np

from plastic_hotspots.boxmath import FloatArray, IntArray, OverlapMetric
from plastic_hotspots.detector.boxes import nms


def tile_starts(length: int, size: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``size`` along ``length`` with at least ``overlap`` (fraction) shared.

    The last tile ends flush with the edge; a length no larger than ``size`` gives one tile at 0.
    """
    if size <= 0:
        raise ValueError(f"tile size must be positive, got {size}")
    if not 0 <= overlap < 1:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
    if length <= size:
        return [0]
    step_max = size * (1 - overlap)
    count = math.ceil((length - size) / step_max) + 1 if step_max > 0 else length
    # Spread the tiles evenly so every overlap is the same and at least the one asked for.
    return [round(k * (length - size) / (count - 1)) for k in range(count)]


def tile_windows(width: int, height: int, size: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` windows of at most ``size`` pixels covering a ``width x height`` image."""
    xs = tile_starts(width, size, overlap)
    ys = tile_starts(height, size, overlap)
    return [(x, y, min(x + size, width), min(y + size, height)) for y in ys for x in xs]


def shift_boxes(boxes: FloatArray, x0: int, y0: int) -> FloatArray:
    """Boxes detected in a tile at ``(x0, y0)``, in the full image's pixels."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] += x0
    out[:, [1, 3]] += y0
    return out


def clip_boxes(boxes: FloatArray, width: int, height: int) -> FloatArray:
    """Boxes cut to the ``width x height`` image (a box wholly outside collapses to zero area)."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def nms_merge(
    boxes: FloatArray,
    scores: FloatArray,
    classes: IntArray,
    iou: float = 0.5,
    *,
    metric: OverlapMetric = "ios",
) -> IntArray:
    """Indices of the boxes kept after merging the duplicates found in overlapping tiles.

    Greedy and class-wise: best score first, a box is dropped when it overlaps a kept box of its class
    by more than ``iou``. With ``metric="ios"`` (intersection over the smaller box, the default) a box cut
    by a tile border is merged into the whole box seen in the neighbouring tile, which plain IoU misses
    (a box cut to a quarter has an IoU of 0.25 with the whole one, but an IoS of 1).

    Args:
        boxes: ``(N, 4)`` xyxy boxes in full-image pixels (see :func:`shift_boxes`).
        scores: ``(N,)`` scores.
        classes: ``(N,)`` class ids; boxes of different classes never merge.
        iou: Overlap above which the weaker box is dropped.
        metric: ``"ios"`` or ``"iou"``.

    Returns:
        Indices into ``boxes`` of the boxes kept, best score first.
    """
    return nms(boxes, scores, classes, iou, metric=metric)


def merge_tiles(boxes: FloatArray, scores: FloatArray, classes: IntArray, threshold: float = 0.5) -> IntArray:
    """:func:`nms_merge` with intersection over the smaller box (the name the predictor uses)."""
    return nms_merge(boxes, scores, classes, threshold, metric="ios")
