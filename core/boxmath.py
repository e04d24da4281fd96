"""Box overlap on arrays, shared by every stage (pixel ``xyxy``, top-left origin)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Intersection over union of ``xyxy`` boxes, broadcast along the leading axes (0 where both are empty).

    ``iou(a[:, None, :], b[None, :, :])`` is the ``(len(a), len(b))`` matrix.
    """
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.asarray(np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0), dtype=np.float64)
