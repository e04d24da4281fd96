"""Class-wise non-maximum suppression on arrays (pure numpy).

Boxes are pixel ``xyxy`` with a top-left origin, as everywhere in the project; their overlap is
:func:`plastic_hotspots.boxmath.overlap`.
"""

from __future__ import annotations

import numpy as np

from plastic_hotspots.boxmath import FloatArray, IntArray, OverlapMetric, overlap


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
