"""Box overlap on arrays, shared by every stage (pixel ``xyxy``, top-left origin)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
OverlapMetric = Literal["iou", "ios"]


def areas(boxes: FloatArray) -> FloatArray:
    """Areas of ``xyxy`` boxes along the leading axes (zero for degenerate boxes)."""
    w = np.clip(boxes[..., 2] - boxes[..., 0], 0.0, None)
    h = np.clip(boxes[..., 3] - boxes[..., 1], 0.0, None)
    return np.asarray(w * h, dtype=np.float64)


def overlap(a: FloatArray, b: FloatArray, metric: OverlapMetric = "iou") -> FloatArray:
    """Overlap of ``xyxy`` boxes, broadcast along the leading axes (0 where the denominator is 0).

    ``iou`` is intersection over union; ``ios`` is intersection over the smaller box's area, which
    also merges a box cut by a tile border with the whole box seen in the neighbouring tile.
    ``overlap(box, others)`` compares one box with each of ``others``;
    ``overlap(a[:, None, :], b[None, :, :])`` is the ``(len(a), len(b))`` matrix.
    """
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = iw * ih
    area_a, area_b = areas(a), areas(b)
    denom = np.minimum(area_a, area_b) if metric == "ios" else area_a + area_b - inter
    return np.asarray(np.where(denom > 0, inter / np.where(denom > 0, denom, 1.0), 0.0), dtype=np.float64)


def iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Intersection over union of ``xyxy`` boxes: :func:`overlap` with ``metric="iou"``."""
    return overlap(a, b, "iou")
