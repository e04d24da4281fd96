from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point

from maps.errors import CRSError, LayerError
from maps.grid import grid_for_bounds, utm_crs_for
from maps.layers import (
    load_barriers,
    load_dem,
    load_population,
    raster_bounds_lonlat,
    rasterize_zones,
    read_vector,
)
from maps.params import BarrierPass, ZoneDefaults


def write_raster(
    path: Path,
    values: np.ndarray,
    crs: str | None,
    west: float,
    north: float,
    px: float,
    nodata: float | None = None,
) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="float64",
        crs=crs,
        transform=from_origin(west, north, px, px),
        nodata=nodata,
    ) as dst:
        dst.write(values, 1)
    return path


@pytest.mark.parametrize("cell_size", [50.0, 100.0, 250.0, 1000.0])
def test_population_regrid_keeps_the_total(tmp_path: Path, cell_size: float) -> None:
    rng = np.random.default_rng(3)
    people = rng.gamma(0.5, 40.0, size=(60, 80))
    path = write_raster(tmp_path / "pop.tif", people, "EPSG:4326", 85.25, 27.76, 1 / 1200)
    # A grid generously covering the raster, so every pixel lands somewhere.
    grid = grid_for_bounds((85.24, 27.70, 85.33, 27.77), cell_size)
    out = load_population(path, grid)
    assert out.sum() == pytest.approx(people.sum(), rel=1e-9)
    assert out.min() >= 0


def test_utm_zone_choice() -> None:
    assert utm_crs_for(100.1, 20.2) == "EPSG:32647"
    assert utm_crs_for(-43.2, -22.9) == "EPSG:32723"


def test_raster_without_crs_says_how_to_fix(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "dem.tif", np.ones((5, 5)), None, 0, 5, 1)
    with pytest.raises(CRSError, match="has no CRS") as info:
        raster_bounds_lonlat(path)
    assert "gdal_edit" in info.value.hint


def test_dem_checks(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    feet = write_raster(tmp_path / "feet.tif", np.full((30, 30), 12000.0), "EPSG:4326", 99.99, 20.03, 0.002)
    with pytest.raises(LayerError, match="expected metres"):
        load_dem(feet, grid)
    empty = write_raster(
        tmp_path / "empty.tif", np.full((30, 30), -9999.0), "EPSG:4326", 99.99, 20.03, 0.002, nodata=-9999.0
    )
    with pytest.raises(LayerError, match="nodata everywhere"):
        load_dem(empty, grid)
    far = write_raster(tmp_path / "far.tif", np.full((30, 30), 100.0), "EPSG:4326", 10.0, 50.0, 0.002)
    with pytest.raises(LayerError, match="does not overlap"):
        load_dem(far, grid)
    with pytest.raises(LayerError, match="not found"):
        load_dem(tmp_path / "missing.tif", grid)


def test_zones_fill_defaults_and_reject_percentages(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    zone = Point(100.01, 20.01).buffer(0.004)
    zones = gpd.GeoDataFrame({"collection_rate": [0.9]}, geometry=[zone], crs="EPSG:4326")
    out = rasterize_zones(zones, grid, ZoneDefaults())
    assert out.collection_rate.max() == pytest.approx(0.9)
    assert out.collection_rate.min() == pytest.approx(ZoneDefaults().collection_rate)
    assert np.all(out.plastic_share == ZoneDefaults().plastic_share)
    bad = gpd.GeoDataFrame({"collection_rate": [60.0]}, geometry=[zone], crs="EPSG:4326")
    with pytest.raises(LayerError, match="fraction"):
        rasterize_zones(bad, grid, ZoneDefaults())


def test_vectors_need_a_crs_and_barriers_a_kind(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    path = tmp_path / "b.gpkg"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[Point(100.01, 20.01)], crs="EPSG:4326").to_file(
        path, layer="b"
    )
    with pytest.raises(LayerError, match="no `kind` column"):
        load_barriers(path, grid, BarrierPass())
    gpd.GeoDataFrame({"kind": ["Dam"]}, geometry=[Point(100.01, 20.01)], crs="EPSG:4326").to_file(
        path, layer="b"
    )
    barriers = load_barriers(path, grid, BarrierPass())
    assert barriers.kind == ["dam"]
    assert barriers.pass_factor.tolist() == [BarrierPass().dam]
    nocrs = tmp_path / "lines.shp"
    gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])]).to_file(nocrs)
    with pytest.raises(CRSError, match="no CRS"):
        read_vector(nocrs, "rivers")


@pytest.mark.realdata
def test_worldpop_kathmandu_total_is_kept(shared_data: Path) -> None:
    path = shared_data / "kathmandu_worldpop" / "NPL_ppp_v2c_2020_UNadj.tif"
    with rasterio.open(path) as src:
        total = float(src.read(1, masked=True).sum())
    west, south, east, north = raster_bounds_lonlat(path)
    for cell in (100.0, 500.0):
        grid = grid_for_bounds((west - 0.01, south - 0.01, east + 0.01, north + 0.01), cell)
        out = load_population(path, grid)
        print(
            f"Kathmandu 2020 UN-adjusted: source {total:,.0f} people, on a {cell:.0f} m grid {out.sum():,.0f}"
        )
        assert out.sum() == pytest.approx(total, rel=1e-6)
    assert total == pytest.approx(2_196_647, rel=1e-4)


@pytest.mark.realdata
def test_thai_districts_are_clipped_to_the_area(shared_data: Path) -> None:
    from maps.layers import load_boundaries

    path = shared_data / "thailand_admin_boundaries" / "th_adm2.geojson"
    units = load_boundaries(path, (99.9, 20.1, 100.2, 20.4))
    assert units.crs.to_epsg() == 4326
    assert "Mueang Chiang Rai" in set(units["name"])
    assert 3 <= len(units) <= 10
    west, south, east, north = units.total_bounds
    assert west >= 99.9 - 1e-9
    assert east <= 100.2 + 1e-9
    assert south >= 20.1 - 1e-9
    assert north <= 20.4 + 1e-9
    with pytest.raises(LayerError, match="no boundary"):
        load_boundaries(path, (10.0, 50.0, 10.1, 50.1))
