"""Box conversions round-trip; pre-label uncertainty; the taxonomy's labelling interface."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plastic_hotspots.annotations.convert import ls_to_pixels, pixels_to_ls, pixels_to_yolo, yolo_to_pixels
from plastic_hotspots.annotations.tasks import prelabels, uncertainty
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES, label_config
from plastic_hotspots.records import BBox

sizes = st.integers(16, 8000)
fractions = st.floats(0.0, 0.9)


@given(sizes, sizes, fractions, fractions, st.floats(0.01, 0.1), st.floats(0.01, 0.1))
def test_round_trips(w: int, h: int, fx: float, fy: float, fw: float, fh: float) -> None:
    box = BBox(fx * w, fy * h, (fx + fw) * w, (fy + fh) * h)
    back = ls_to_pixels(*pixels_to_ls(box, w, h), w, h)
    assert (back.x1, back.y1, back.x2, back.y2) == pytest.approx((box.x1, box.y1, box.x2, box.y2), abs=1e-6)
    back = yolo_to_pixels(*pixels_to_yolo(box, w, h), w, h)
    assert (back.x1, back.y1, back.x2, back.y2) == pytest.approx((box.x1, box.y1, box.x2, box.y2), abs=1e-6)


def test_known_values() -> None:
    assert pixels_to_ls(BBox(20, 30, 60, 90), 200, 150) == pytest.approx((10.0, 20.0, 20.0, 40.0))
    assert pixels_to_yolo(BBox(20, 30, 60, 90), 200, 150) == pytest.approx((0.2, 0.4, 0.2, 0.4))


def test_uncertainty_orders_coin_tosses_first() -> None:
    assert uncertainty([0.5]) == 1.0
    assert uncertainty([0.99, 0.01]) == pytest.approx(0.02)
    assert uncertainty([0.97, 0.55]) == pytest.approx(0.9)
    assert uncertainty([]) == 0.5
    rows = [{"key": "a", "class_name": "bottle", "score": 0.95, "x1": 1, "y1": 1, "x2": 5, "y2": 5},
            {"key": "b", "class_name": "bottle", "score": 0.5, "x1": 1, "y1": 1, "x2": 5, "y2": 5},
            {"key": "b", "class_name": "tyre", "score": 0.9, "x1": 1, "y1": 1, "x2": 5, "y2": 5}]  # fmt: skip
    labels = {p.key: p for p in prelabels(rows, {"a": (10, 10), "b": (10, 10), "c": (10, 10)}, CLASS_NAMES)}
    assert labels["b"].score < labels["c"].score < labels["a"].score  # served b, then c, then a
    assert len(labels["b"].result) == 1  # the unknown class is left out
    assert labels["c"].result == []
    assert labels["a"].result[0]["value"]["rectanglelabels"] == ["bottle"]


def test_label_config_lists_the_taxonomy_in_order() -> None:
    root = ET.fromstring(label_config())
    labels = [el.attrib["value"] for el in root.iter("Label")]
    assert labels == list(CLASS_NAMES)
    assert root.find("RectangleLabels").attrib["toName"] == "image"  # type: ignore[union-attr]
