"""Tiled river routing, stream order and hotspot ranking equal their whole-grid versions."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.maps.grid import grid_for_bounds
from plastic_hotspots.maps.inputs.rasters import load_dem, raster_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import Barriers
from plastic_hotspots.maps.large.hotspots import medians_tiled, pick_peaks_tiled
from plastic_hotspots.maps.large.rivers import route_rivers_tiled, strahler_tiled
from plastic_hotspots.maps.large.routing import route_tiled, route_untiled
from plastic_hotspots.maps.large.store import TiledRaster
from plastic_hotspots.maps.large.sweeps import accumulate_tiled
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.maps.science.basin import array_window, snap_barriers
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


def random_dem(seed: int, rows: int, cols: int) -> FloatArray:
    """Rough terrain in whole metres (pits, flats) with a few nodata holes."""
    rng = np.random.default_rng(seed)
    z = np.round(rng.normal(size=(rows, cols)).cumsum(axis=0) + rng.random((rows, cols)) * 3.0)
    z[rng.random((rows, cols)) < 0.03] = np.nan
    return z


def river_mask(accumulation: FloatArray, seed: int) -> npt.NDArray[np.bool_]:
    """Cells draining 6+ cells, plus scattered cells (rivers that drain into land, as mapped ones can)."""
    rng = np.random.default_rng(seed + 1)
    return (accumulation >= 6) | (rng.random(accumulation.shape) < 0.05) & (accumulation > 0)


def tiled(work: Path, name: str, values: npt.ArrayLike, tile: int) -> TiledRaster:
    return TiledRaster.from_array(work / f"{name}.tiles", values, tile)


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(3, 40),
    cols=st.integers(3, 40),
    tile=st.integers(2, 13),
)
def test_tiled_stream_order_and_river_loads_equal_the_whole_grid(
    tmp_path_factory: pytest.TempPathFactory, seed: int, rows: int, cols: int, tile: int
) -> None:
    work = tmp_path_factory.mktemp("rivers")
    z = random_dem(seed, rows, cols)
    untiled = route_untiled(z, 30.0)
    routing = route_tiled(z, 30.0, work, tile=tile)
    down, levels = untiled.down, terrain.flow_levels(untiled.down)
    rivers = river_mask(untiled.accumulation, seed)
    river_tiles = tiled(work, "rivers", rivers.astype(np.uint8), tile)

    order, solves = strahler_tiled(routing.down, river_tiles, work / "order.tiles")
    expected_order = terrain.strahler_order(down, levels, rivers.ravel()).reshape(z.shape)
    np.testing.assert_array_equal(order.to_array(), expected_order)
    assert solves >= routing.counts.tiles

    rng = np.random.default_rng(seed)
    leakage = rng.random(z.shape) * 100.0
    passf = np.where(rivers, rng.uniform(0.5, 1.0, z.shape), 1.0)
    graph = model.FlowGraph(
        shape=(rows, cols),
        cell_size=30.0,
        filled=untiled.filled,
        down=down,
        levels=levels,
        step=terrain.step_length(down, z.shape, 30.0),
        slope=np.zeros(z.shape),
        accumulation=untiled.accumulation,
        valid=np.isfinite(z),
    )
    expected = model.route_rivers(graph, rivers, leakage, passf)
    layers = {
        "leakage": tiled(work, "leakage", leakage, tile),
        "land_transfer": tiled(work, "land", np.where(rivers, 0.0, 1.0), tile),
        "river_transfer": tiled(work, "river", np.where(rivers, passf, 0.0), tile),
        "pass_factor": tiled(work, "pass", passf, tile),
    }
    load, retained, exported = route_rivers_tiled(routing.down, river_tiles, layers, work)
    np.testing.assert_allclose(load.to_array(), expected.load, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(retained.to_array(), expected.retained, rtol=1e-12, atol=1e-9)
    assert exported == pytest.approx(expected.exported, rel=1e-12, abs=1e-9)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), tile=st.integers(2, 9))
def test_tiled_accumulation_with_a_transfer(
    tmp_path_factory: pytest.TempPathFactory, seed: int, tile: int
) -> None:
    work = tmp_path_factory.mktemp("transfer")
    z = random_dem(seed, 23, 19)
    untiled = route_untiled(z, 10.0)
    routing = route_tiled(z, 10.0, work, tile=tile)
    rng = np.random.default_rng(seed)
    weights, transfer = rng.random(z.shape), rng.random(z.shape)
    acc = accumulate_tiled(
        routing.down, tiled(work, "w", weights, tile), work / "acc", transfer=tiled(work, "t", transfer, tile)
    )
    expected = terrain.accumulate(
        untiled.down, terrain.flow_levels(untiled.down), weights.ravel(), transfer.ravel()
    )
    np.testing.assert_allclose(acc.to_array().ravel(), expected, rtol=1e-12)


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 30),
    cols=st.integers(1, 30),
    tile=st.integers(2, 9),
    top_n=st.integers(1, 8),
    separation=st.integers(0, 4),
    levels=st.integers(2, 50),
)
def test_tiled_peaks_are_the_whole_grid_peaks(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    rows: int,
    cols: int,
    tile: int,
    top_n: int,
    separation: int,
    levels: int,
) -> None:
    """Ties (few distinct values), zeros, negatives and NaN: the same cells in the same order."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-3, levels, size=(rows, cols)).astype(np.float64)
    values[rng.random((rows, cols)) < 0.1] = np.nan
    raster = tiled(tmp_path_factory.mktemp("peaks"), "v", values, tile)
    assert pick_peaks_tiled(raster, top_n, separation) == model.pick_peaks(values, top_n, separation)


def test_peaks_near_tile_edges_suppress_across_them(tmp_path: Path) -> None:
    values = np.zeros((12, 12))
    values[5, 5], values[6, 6], values[2, 9] = 9.0, 8.0, 7.0  # (6, 6) is in the next tile, 1 cell away
    raster = tiled(tmp_path, "v", values, 6)
    assert pick_peaks_tiled(raster, 3, 2) == [(5, 5), (2, 9)] == model.pick_peaks(values, 3, 2)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_tiled_medians_are_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(size=n) * 50.0, 1)  # repeated values, negatives
    chunks = np.array_split(values, 5)
    medians = medians_tiled(lambda: ([c, np.abs(c), c[:0]] for c in chunks), 3)
    assert medians == [np.median(values), np.median(np.abs(values)), None]


def test_barriers_snap_as_in_the_pipeline(tmp_path: Path) -> None:
    grid = GridSpec(crs="EPSG:32647", west=500_000.0, north=2_200_000.0, cell_size=100.0, width=30, height=20)
    rng = np.random.default_rng(3)
    rivers = rng.random(grid.shape) < 0.03
    n = 40
    barriers = Barriers(
        name=[f"b{i}" for i in range(n)],
        kind=["dam"] * n,
        x=grid.west + rng.uniform(-300, 3300, n),
        y=grid.north - rng.uniform(-300, 2300, n),
        pass_factor=np.full(n, 0.5),
    )
    expected = snap_barriers(barriers, grid, array_window(rivers))  # the whole grid's reader
    got = snap_barriers(barriers, grid, tiled(tmp_path, "r", rivers.astype(np.uint8), 7).read_window)
    assert got == expected
    assert any(c >= 0 for c in got)
    assert any(c < 0 for c in got)


@pytest.mark.realdata
def test_tiled_river_routing_on_the_mekong_tributary(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "mekong_srepok_hydrostreamer"
    grid = grid_for_bounds(raster_bounds_lonlat(folder / "DEM.tif"), 500.0)
    dem = load_dem(folder / "DEM.tif", grid)
    untiled = route_untiled(dem, grid.cell_size)
    routing = route_tiled(dem, grid.cell_size, tmp_path, tile=24)  # 10 x 10 tiles
    down, levels = untiled.down, terrain.flow_levels(untiled.down)
    rivers = (untiled.accumulation * grid.cell_area_m2 / 1e6 >= 25.0) & np.isfinite(dem)
    river_tiles = tiled(tmp_path, "rivers", rivers.astype(np.uint8), 24)
    order, _ = strahler_tiled(routing.down, river_tiles, tmp_path / "order.tiles")
    expected_order = terrain.strahler_order(down, levels, rivers.ravel()).reshape(dem.shape)
    np.testing.assert_array_equal(order.to_array(), expected_order)
    assert expected_order.max() >= 4  # a real network, with tributaries crossing tile edges
    rng = np.random.default_rng(0)
    leakage = np.where(np.isfinite(dem), rng.random(dem.shape), 0.0)
    passf = np.where(rivers, np.exp(-rng.random(dem.shape) * 0.01), 1.0)
    graph = model.FlowGraph(
        shape=(int(dem.shape[0]), int(dem.shape[1])),
        cell_size=grid.cell_size,
        filled=untiled.filled,
        down=down,
        levels=levels,
        step=terrain.step_length(down, dem.shape, grid.cell_size),
        slope=np.zeros(dem.shape),
        accumulation=untiled.accumulation,
        valid=np.isfinite(dem),
    )
    expected = model.route_rivers(graph, rivers, leakage, passf)
    layers = {
        "leakage": tiled(tmp_path, "leakage", leakage, 24),
        "land_transfer": tiled(tmp_path, "land", np.where(rivers, 0.0, 1.0), 24),
        "river_transfer": tiled(tmp_path, "river", np.where(rivers, passf, 0.0), 24),
        "pass_factor": tiled(tmp_path, "pass", passf, 24),
    }
    load, retained, exported = route_rivers_tiled(routing.down, river_tiles, layers, tmp_path)
    np.testing.assert_allclose(load.to_array(), expected.load, rtol=1e-11)
    np.testing.assert_allclose(retained.to_array(), expected.retained, rtol=1e-11, atol=1e-12)
    assert exported == pytest.approx(expected.exported, rel=1e-11)
    assert gpd.read_file(folder / "rivers.geojson").shape[0] > 0  # the data set is the one expected
