from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plastic_hotspots.errors import PlasticHotspotsError, RecordError
from plastic_hotspots.provenance import make_provenance
from plastic_hotspots.records import (
    BBox,
    Detection,
    GeoDetection,
    GridSpec,
    ImageRecord,
    Layer,
    Provenance,
)


def test_bbox_rejects_inverted_box() -> None:
    with pytest.raises(RecordError, match="x2 > x1"):
        BBox(10, 0, 5, 5)


def test_bbox_measures() -> None:
    box = BBox(1, 2, 4, 8)
    assert (box.width, box.height, box.area) == (3, 6, 18)


def test_detection_score_range() -> None:
    with pytest.raises(RecordError, match=r"score must lie in \[0, 1\]"):
        Detection(BBox(0, 0, 1, 1), "bottle", 1.5)


def test_image_record_needs_both_coordinates() -> None:
    with pytest.raises(RecordError, match="both lon and lat"):
        ImageRecord("a.jpg", 10, 10, lon=100.0)


def test_lonlat_order_hint() -> None:
    with pytest.raises(RecordError, match="longitude comes first"):
        GeoDetection(
            Detection(BBox(0, 0, 1, 1), "can", 0.5), "a.jpg", lon=20.0, lat=100.0, location_error_m=5
        )


def test_error_hint_in_message() -> None:
    err = PlasticHotspotsError("bad thing", hint="do this")
    assert str(err) == "bad thing\nHow to fix: do this"


@given(
    st.floats(-180, 180),
    st.floats(-90, 90),
    st.dictionaries(
        st.text(min_size=1, max_size=8), st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
    ),
)
def test_provenance_round_trip(lon: float, lat: float, params: dict[str, object]) -> None:
    prov = Provenance("t", "1.0", "2026-01-01T00:00:00+00:00", params, (f"{lon},{lat}",), None)  # type: ignore[arg-type]
    assert Provenance.from_json(prov.to_json()) == prov


def test_make_provenance_stamps_version_and_time() -> None:
    prov = make_provenance("maps.test", {"a": 1}, ["x.tif"])
    assert prov.tool == "maps.test"
    assert prov.parameters == {"a": 1}
    assert prov.inputs == ("x.tif",)
    assert prov.created_at.endswith("+00:00")


def test_grid_bounds_and_layer_shape() -> None:
    grid = GridSpec("EPSG:32647", 1000.0, 5000.0, 100.0, width=4, height=3)
    assert grid.bounds == (1000.0, 4700.0, 1400.0, 5000.0)
    assert math.isclose(grid.cell_area_m2, 10000.0)
    with pytest.raises(RecordError, match=r"expects \(3, 4\)"):
        Layer("x", grid, np.zeros((4, 3)), "1")
