"""Tiles cover the image with the overlap asked for; merging removes border duplicates (properties)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.boxmath import overlap
from plastic_hotspots.detector.boxes import nms
from plastic_hotspots.detector.slicing import (
    clip_boxes,
    merge_tiles,
    nms_merge,
    shift_boxes,
    tile_starts,
    tile_windows,
)


@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.integers(32, 1024),
    st.floats(0.0, 0.6),
)
@settings(max_examples=200, deadline=None)
def test_windows_cover_every_pixel_with_the_overlap(width: int, height: int, size: int, frac: float) -> None:
    windows = tile_windows(width, height, size, frac)
    covered = np.zeros((min(height, 300), min(width, 300)), dtype=bool)  # spot-check the corner
    for x0, y0, x1, y1 in windows:
        assert 0 <= x0 < x1 <= width
        assert 0 <= y0 < y1 <= height
        assert x1 - x0 <= size
        assert y1 - y0 <= size
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    for length in (width, height):
        starts = tile_starts(length, size, frac)
        ends = [min(s + size, length) for s in starts]
        assert starts[0] == 0
        assert ends[-1] == length
        for a_end, b_start in zip(ends, starts[1:], strict=False):
            assert a_end - b_start >= frac * size - 1  # shared pixels (rounding: one pixel)


def test_known_tiles() -> None:
    assert tile_starts(1000, 400, 0.2) == [0, 300, 600]
    assert tile_starts(400, 400, 0.2) == [0]
    assert tile_windows(700, 300, 320, 0.25) == [(0, 0, 320, 300), (190, 0, 510, 300), (380, 0, 700, 300)]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 10, 1.0)


def test_shift_and_merge_across_a_border() -> None:
    # One bottle at x 290..330 seen whole in the right tile and cut at 300 in the left tile.
    left = shift_boxes(np.array([[290.0, 50.0, 300.0, 90.0]]), 0, 0)
    right = shift_boxes(np.array([[0.0, 50.0, 40.0, 90.0]]), 290, 0)
    other = np.array([[500.0, 10.0, 520.0, 30.0]])
    boxes = np.concatenate([left, right, other])
    keep = merge_tiles(boxes, np.array([0.6, 0.9, 0.8]), np.array([0, 0, 0]))
    assert sorted(keep.tolist()) == [1, 2]
    np.testing.assert_array_equal(boxes[1], [290.0, 50.0, 330.0, 90.0])
    # Same place, different class: both stay.
    keep = merge_tiles(boxes[:2], np.array([0.6, 0.9]), np.array([0, 1]))
    assert sorted(keep.tolist()) == [0, 1]


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 80), st.floats(1, 80), st.floats(0.01, 1),
              st.integers(0, 2)),
    min_size=0, max_size=40,
)  # fmt: skip


@given(boxes_strategy, st.sampled_from(["iou", "ios"]), st.floats(0.1, 0.9))
@settings(max_examples=150, deadline=None)
def test_nms_properties(rows: list[tuple[float, ...]], metric: str, threshold: float) -> None:
    if rows:
        arr = np.array(rows)
        boxes = np.stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]], axis=1)
        scores, classes = arr[:, 4], arr[:, 5].astype(np.int64)
    else:
        boxes, scores, classes = np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    keep = nms(boxes, scores, classes, threshold, metric=metric)  # type: ignore[arg-type]
    assert len(set(keep.tolist())) == len(keep)
    # No two kept boxes of one class overlap above the threshold.
    for i in keep:
        same = [j for j in keep if j != i and classes[j] == classes[i]]
        if same:
            assert (overlap(boxes[i], boxes[same], metric) <= threshold + 1e-9).all()  # type: ignore[arg-type]
    # Every dropped box is covered by a kept box of its class with a score at least as high.
    for j in set(range(len(boxes))) - set(keep.tolist()):
        cover = [i for i in keep if classes[i] == classes[j] and scores[i] >= scores[j]]
        assert cover
        assert (overlap(boxes[j], boxes[cover], metric) > threshold).any()
    # Idempotent: merging the kept boxes again keeps them all.
    again = nms(boxes[keep], scores[keep], classes[keep], threshold, metric=metric)  # type: ignore[arg-type]
    assert len(again) == len(keep)


def _arrays(rows: list[tuple[float, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    arr = np.array(rows)
    boxes = np.stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]], axis=1)
    return boxes, arr[:, 4], arr[:, 5].astype(np.int64)


@given(boxes_strategy, st.sampled_from(["iou", "ios"]), st.floats(0.1, 0.9))
@settings(max_examples=100, deadline=None)
def test_nms_merge_is_idempotent_and_leaves_no_duplicates(
    rows: list[tuple[float, ...]], metric: str, threshold: float
) -> None:
    boxes, scores, classes = _arrays(rows)
    keep = nms_merge(boxes, scores, classes, threshold, metric=metric)  # type: ignore[arg-type]
    assert keep.dtype == np.int64
    assert sorted(set(keep.tolist())) == sorted(keep.tolist())
    assert (np.diff(scores[keep]) <= 0).all()  # best first
    for pos, i in enumerate(keep):
        for j in keep[pos + 1 :]:
            if classes[i] == classes[j]:
                assert overlap(boxes[i], boxes[j][None], metric)[0] <= threshold + 1e-9  # type: ignore[arg-type]
    again = nms_merge(boxes[keep], scores[keep], classes[keep], threshold, metric=metric)  # type: ignore[arg-type]
    assert again.tolist() == list(range(len(keep)))
    # The tile helper is the IoS merge at the same threshold.
    np.testing.assert_array_equal(
        merge_tiles(boxes, scores, classes, threshold), nms_merge(boxes, scores, classes, threshold)
    )


def test_ios_merges_a_box_cut_by_a_border_where_iou_does_not() -> None:
    whole = [100.0, 100.0, 140.0, 140.0]
    quarter = [100.0, 100.0, 110.0, 140.0]  # the same object, cut at x = 110 by a tile edge
    boxes = np.array([whole, quarter])
    scores, classes = np.array([0.9, 0.7]), np.array([2, 2])
    assert nms_merge(boxes, scores, classes, 0.5, metric="iou").tolist() == [0, 1]  # IoU 0.25: kept
    assert nms_merge(boxes, scores, classes, 0.5).tolist() == [0]  # IoS 1.0: merged
    assert nms_merge(boxes, scores, np.array([2, 1]), 0.5).tolist() == [0, 1]  # another class: kept
    assert nms_merge(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)).tolist() == []


@given(
    st.lists(st.tuples(st.floats(-200, 900), st.floats(-200, 900), st.floats(0, 300), st.floats(0, 300)),
             max_size=20),
    st.integers(0, 600),
    st.integers(0, 600),
    st.integers(1, 800),
    st.integers(1, 800),
)  # fmt: skip
@settings(max_examples=100, deadline=None)
def test_shift_and_clip(
    rows: list[tuple[float, float, float, float]], x0: int, y0: int, width: int, height: int
) -> None:
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in rows]).reshape(-1, 4)
    shifted = shift_boxes(boxes, x0, y0)
    np.testing.assert_allclose(shifted - [x0, y0, x0, y0], boxes, atol=1e-9)
    assert shift_boxes(boxes, x0, y0) is not boxes
    clipped = clip_boxes(shifted, width, height)
    assert clipped.shape == shifted.shape
    assert ((clipped[:, [0, 2]] >= 0) & (clipped[:, [0, 2]] <= width)).all()
    assert ((clipped[:, [1, 3]] >= 0) & (clipped[:, [1, 3]] <= height)).all()
    assert (clipped[:, 2] >= clipped[:, 0]).all()
    assert (clipped[:, 3] >= clipped[:, 1]).all()
    inside = (shifted[:, [0, 1]] >= 0).all(axis=1) & (shifted[:, 2] <= width) & (shifted[:, 3] <= height)
    np.testing.assert_array_equal(clipped[inside], shifted[inside])  # boxes inside are untouched
