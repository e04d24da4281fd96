"""Box overlap: intersection over union and over the smaller box, broadcast along leading axes."""

from __future__ import annotations

import numpy as np
import pytest

from plastic_hotspots.boxmath import areas, iou, overlap


def test_areas_are_zero_for_degenerate_boxes() -> None:
    boxes = np.array([[0, 0, 4, 2], [3, 3, 3, 5], [5, 5, 1, 1]], dtype=np.float64)
    assert areas(boxes).tolist() == [8.0, 0.0, 0.0]


def test_iou_and_ios_of_one_box_with_others() -> None:
    box = np.array([0, 0, 10, 10], dtype=np.float64)
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [2, 2, 4, 4], [20, 20, 30, 30], [1, 1, 1, 1]], float)
    assert overlap(box, others).tolist() == pytest.approx([1.0, 50 / 150, 4 / 100, 0.0, 0.0])
    assert overlap(box, others, "ios").tolist() == pytest.approx([1.0, 0.5, 1.0, 0.0, 0.0])


def test_the_matrix_form_matches_row_by_row() -> None:
    rng = np.random.default_rng(3)
    a = np.sort(rng.uniform(0, 50, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 50, (4, 2, 2)), axis=1).transpose(0, 2, 1).reshape(4, 4)[:, [0, 2, 1, 3]]
    matrix = iou(a[:, None, :], b[None, :, :])
    assert matrix.shape == (6, 4)
    for i in range(6):
        assert np.array_equal(matrix[i], overlap(a[i], b))
    assert np.array_equal(matrix, iou(b[:, None, :], a[None, :, :]).T)
