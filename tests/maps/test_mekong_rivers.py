"""Rivers routed on the real Mekong-tributary DEM agree with its published river network."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from scipy import ndimage

from plastic_hotspots.maps.grid import grid_for_bounds
from plastic_hotspots.maps.inputs.rasters import load_dem, raster_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import rasterize_lines
from plastic_hotspots.maps.science import model


@pytest.mark.realdata
def test_derived_rivers_match_the_published_network(shared_data: Path) -> None:
    folder = shared_data / "mekong_srepok_hydrostreamer"
    grid = grid_for_bounds(raster_bounds_lonlat(folder / "DEM.tif"), 500.0)
    dem = load_dem(folder / "DEM.tif", grid)
    graph = model.build_flow_graph(dem, grid.cell_size)
    derived = model.rivers_from_accumulation(graph, threshold_km2=25.0)
    published = rasterize_lines(gpd.read_file(folder / "rivers.geojson"), grid)
    to_derived = ndimage.distance_transform_edt(~derived)
    to_published = ndimage.distance_transform_edt(~published)
    # Agreement within 2 cells (1 km), both ways: how much of the published network we find, and how
    # much of what we call river is on it.
    found = float((to_derived[published] <= 2).mean())
    on_network = float((to_published[derived] <= 2).mean())
    print(
        f"published river cells within 1 km of a derived river: {found:.3f}; "
        f"derived within 1 km of published: {on_network:.3f}"
    )
    assert found >= 0.85
    assert on_network >= 0.85
