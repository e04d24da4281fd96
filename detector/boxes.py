"""Box maths on arrays: overlaps and class-wise non-maximum suppression (pure numpy).

Boxes are pixel ``xyxy`` with a top-left origin, as everywhere in the project.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
OverlapMetric = Literal["iou", "ios"]


def areas(boxes: FloatArray) -> FloatArray:
    """Areas of ``(N, 4)`` xyxy boxes (zero for degenerate boxes)."""
    w = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return np.asarray(w * h, dtype=np.float64)


def overlap(box: FloatArray, others: FloatArray, metric: OverlapMetric = "iou") -> FloatArray:
    """Overlap of one box with each of ``others``.

    ``iou`` is intersection over union; ``ios`` is intersection over the smaller box's area, which
    also merges a box cut by a tile border with the whole box seen in the neighbouring tile.
    """
    ix1 = np.maximum(box[0], others[:, 0])
    iy1 = np.maximum(box[1], others[:, 1])
    ix2 = np.minimum(box[2], others[:, 2])
    iy2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    a = max(float((box[2] - box[0]) * (box[3] - box[1])), 0.0)
    b = areas(others)
    denom = np.minimum(a, b) if metric == "ios" else a + b - inter
    return np.asarray(np.where(denom > 0, inter / np.where(denom > 0, denom, 1.0), 0.0), dtype=np.float64)


def nms(
    boxes: FloatArray,
    scores: FloatArray,
    classes: IntArray,
    threshold: float,
    *,
    metric: OverlapMetric = "iou",
    max_keep: int | None = None,
) -> IntArray:
    """Indices of the boxes kept by greedy class-wise non-maximum suppression, best score first.

    A box is dropped when it overlaps a kept box of the same class by more than ``threshold``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    classes = np.asarray(classes, dtype=np.int64)
    # Offsetting each class far apart lets one pass suppress within classes only.
    span = float(np.abs(boxes).max()) + 1.0
    shifted = boxes + (classes.astype(np.float64) * 2 * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if max_keep is not None and len(keep) >= max_keep:
            break
        rest = order[1:]
        if rest.size == 0:
            break
        order = rest[overlap(shifted[best], shifted[rest], metric) <= threshold]
    return np.asarray(keep, dtype=np.int64)
