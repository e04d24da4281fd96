"""The map's initial view (basin and survey, clear of the legend) and its collapsible legend."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from plastic_hotspots.maps.render.rasters import leakage_rgba
from plastic_hotspots.maps.render.text import Legend
from plastic_hotspots.maps.render.view import MIN_PAD_DEG, view_bounds


def _frame(*geoms: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=list(geoms), crs="EPSG:4326")


def test_view_bounds_is_the_padded_union_of_basin_and_survey() -> None:
    basin = _frame(box(100.0, 20.0, 101.0, 21.0))
    survey = _frame(Point(100.5, 20.5), Point(101.2, 20.9))  # one photo east of the basin
    (south, west), (north, east) = view_bounds([basin, survey, None], pad_fraction=0.1)
    assert (south, west) == pytest.approx((20.0 - 0.1, 100.0 - 0.12))
    assert (north, east) == pytest.approx((21.0 + 0.1, 101.2 + 0.12))


def test_view_bounds_skips_missing_and_empty_layers_and_pads_a_point() -> None:
    empty = _frame()
    (south, west), (north, east) = view_bounds([None, empty, _frame(Point(10.0, 50.0))], pad_fraction=0.05)
    assert (south, west, north, east) == pytest.approx(
        (50.0 - MIN_PAD_DEG, 10.0 - MIN_PAD_DEG, 50.0 + MIN_PAD_DEG, 10.0 + MIN_PAD_DEG)
    )
    with pytest.raises(ValueError, match="at least the basin"):
        view_bounds([None, empty])


def test_view_bounds_clamps_to_web_mercator() -> None:
    (south, west), (north, east) = view_bounds([_frame(box(-180.0, -89.0, 180.0, 89.0))])
    assert (south, west, north, east) == (-85.0, -180.0, 85.0, 180.0)


def test_leakage_legend_range_spans_the_whole_raster() -> None:
    # A town with high values in one corner, low values over the rest of the basin: the ramp's
    # ends come from every cell, not only the town's.
    import numpy as np

    values = np.full((50, 50), 0.5)
    values[:5, :5] = 400.0
    values[40:, 40:] = np.nan  # outside the basin
    _, lo, hi = leakage_rgba(values)
    assert hi == 400.0
    assert lo == pytest.approx(0.5)


def test_legend_is_a_details_element_with_a_toggle() -> None:
    legend = Legend()
    legend.add("Rivers <b>", note="width by order")
    text = legend.to_html()
    assert text.startswith('<details class="ph-box ph-legend" id="ph-legend" open>')
    assert "<summary" in text
    assert "<h2>Legend</h2></summary>" in text
    assert "Rivers &lt;b&gt;" in text
    assert text.endswith("</div></details>")
