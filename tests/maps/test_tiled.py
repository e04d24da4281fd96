"""Tileable routing: the tiled answer equals the whole-grid one, and a tiled run holds only a few tiles."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from plastic_hotspots.maps import demo
from plastic_hotspots.maps.config import load_config
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.grid import grid_for_bounds
from plastic_hotspots.maps.inputs.population import load_population
from plastic_hotspots.maps.inputs.rasters import load_dem, raster_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import rasterize_lines
from plastic_hotspots.maps.io.bands import read_band
from plastic_hotspots.maps.kernels.windows import fill_kernel
from plastic_hotspots.maps.large.inputs import read_dem_tiled, regrid_population_tiled
from plastic_hotspots.maps.large.routing import Routing, route_tiled, route_untiled
from plastic_hotspots.maps.large.run import run_large
from plastic_hotspots.maps.large.store import Border, Seams, TiledRaster, TileLayout
from plastic_hotspots.maps.large.sweeps import accumulate_tiled, downstream_product_tiled
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.maps.science.basin import basin_grid as large_grid

ROOT = Path(__file__).resolve().parents[2]


def assert_same_routing(tiled: Routing, untiled: Routing) -> None:
    np.testing.assert_array_equal(tiled.filled, untiled.filled)  # NaN == NaN here
    np.testing.assert_array_equal(tiled.flat_distance, untiled.flat_distance)
    np.testing.assert_array_equal(tiled.down, untiled.down)
    np.testing.assert_array_equal(tiled.accumulation, untiled.accumulation)


def naive_fill(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """F(c) = max(z(c), min of the 8 neighbours' F), iterated from +inf (edges and nodata drain)."""
    valid = np.isfinite(z)
    filled = np.where(valid, np.inf, np.nan)
    rows, cols = z.shape
    while True:
        padded = np.full((rows + 2, cols + 2), -np.inf)
        padded[1:-1, 1:-1] = np.where(valid, filled, -np.inf)
        lowest = np.full(z.shape, np.inf)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    lowest = np.minimum(lowest, padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols])
        new = np.where(valid, np.maximum(z, lowest), np.nan)
        if np.array_equal(new, filled, equal_nan=True):
            return filled
        filled = new


def random_dem(seed: int, rows: int, cols: int, holes: bool) -> npt.NDArray[np.float64]:
    """Rough terrain in whole metres: many pits and flats; nodata holes if asked."""
    rng = np.random.default_rng(seed)
    z = np.round(rng.normal(size=(rows, cols)).cumsum(axis=0) + rng.random((rows, cols)) * 3.0)
    if holes:
        z[rng.random((rows, cols)) < 0.06] = np.nan
    return z


SILL = (9, 23)


def lake_dem() -> npt.NDArray[np.float64]:
    """A plateau with a pitted basin that fills to a lake across several tiles, spilling north over a
    sill; a flat plain across the grid (on a tile edge for tiles of 4 and 7); a nodata hole."""
    rng = np.random.default_rng(4)
    z = np.full((61, 47), 100.0)
    z[10:51, 5:41] = 40.0 + np.round(rng.random((41, 36)) * 3.0)  # the basin, with pits
    z[SILL] = 50.0  # the sill: the lake's level
    z[0:9, 23] = 30.0 + np.arange(9)  # a gully from the sill down to the north edge
    z[52:58, :] = 70.0  # the plain, draining to the west and east edges
    z[20:24, 42:45] = np.nan  # a hole in the data, on the plateau
    return z


# --------------------------------------------------------------------------------------------------
# The whole-grid routing is what its definition says
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_fill_is_the_plain_fixpoint(seed: int) -> None:
    z = random_dem(seed, 23, 31, holes=seed % 2 == 1)
    routing = route_untiled(z, 10.0)
    np.testing.assert_array_equal(routing.filled, naive_fill(z))
    valid = np.isfinite(z)
    assert np.all(routing.filled[valid] >= z[valid])
    edge = np.zeros_like(valid)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    np.testing.assert_array_equal(routing.filled[edge & valid], z[edge & valid])


def test_the_lake_is_flat_and_drains_through_its_sill() -> None:
    z = lake_dem()
    routing = route_untiled(z, 10.0)
    lake = np.zeros(z.shape, dtype=bool)
    lake[10:51, 5:41] = True
    np.testing.assert_array_equal(routing.filled[lake], 50.0)  # filled to the sill, no epsilon
    sill = SILL[0] * z.shape[1] + SILL[1]
    assert routing.flat_distance[SILL] == 0  # the sill has a lower neighbour: the lake's outlet
    basin = terrain.upstream_of(routing.down, terrain.flow_levels(routing.down), sill).reshape(z.shape)
    assert basin[lake].all()
    assert routing.accumulation[SILL] == basin.sum()
    # Flats drain one step nearer their outlet each time; the plain drains to the grid's edges.
    distance = routing.flat_distance.ravel()
    flat = np.flatnonzero(distance > 0)
    assert np.all(distance[routing.down[flat]] == distance[flat] - 1)
    assert routing.flat_distance[55, 23] == 23  # the middle of the plain, 23 steps from either edge
    assert routing.flat_distance[20, 42] == -1  # nodata


def test_the_models_conditioning_is_the_tileable_routing() -> None:
    z = random_dem(3, 40, 40, holes=True)
    routing = route_untiled(z, 30.0)
    conditioned = terrain.condition(z, 30.0)
    np.testing.assert_array_equal(conditioned.filled, routing.filled)
    np.testing.assert_array_equal(conditioned.flat_distance, routing.flat_distance)
    np.testing.assert_array_equal(conditioned.down, routing.down)
    levels = terrain.flow_levels(routing.down)  # no cycles: every path leaves the grid
    assert sum(level.size for level in levels) == z.size


def test_fill_kernel_matches_scikit_image_reconstruction() -> None:
    morphology = pytest.importorskip("skimage.morphology")
    z = random_dem(11, 50, 60, holes=True)
    rows, cols = z.shape
    seed = np.full((rows + 2, cols + 2), np.inf)
    mask = np.full((rows + 2, cols + 2), -np.inf)
    mask[1:-1, 1:-1] = np.where(np.isfinite(z), z, -np.inf)
    seed[~np.isfinite(mask)] = -np.inf
    reference = morphology.reconstruction(seed, mask, method="erosion", footprint=np.ones((3, 3)))
    padded = np.full((rows + 2, cols + 2), np.nan)
    padded[1:-1, 1:-1] = z
    filled = fill_kernel(padded)
    valid = np.isfinite(z)
    np.testing.assert_array_equal(filled[valid], reference[1:-1, 1:-1][valid])


# --------------------------------------------------------------------------------------------------
# Tiled == untiled
# --------------------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(3, 40),
    cols=st.integers(3, 40),
    tile=st.integers(2, 13),
    holes=st.booleans(),
)
def test_tiled_routing_equals_untiled(
    tmp_path_factory: pytest.TempPathFactory, seed: int, rows: int, cols: int, tile: int, holes: bool
) -> None:
    z = random_dem(seed, rows, cols, holes)
    work = tmp_path_factory.mktemp("tiles")
    untiled = route_untiled(z, 25.0)
    tiled = route_tiled(z, 25.0, work, tile=tile)
    assert_same_routing(tiled.load(), untiled)
    # Any weights (float sums, so to rounding) and products along the paths.
    rng = np.random.default_rng(seed)
    weights = rng.random(z.shape) * 10.0
    factor = rng.random(z.shape)
    stop = rng.random(z.shape) < 0.1
    levels = terrain.flow_levels(untiled.down)
    acc = accumulate_tiled(tiled.down, TiledRaster.from_array(work / "w", weights, tile), work / "acc")
    np.testing.assert_allclose(
        acc.to_array().ravel(), terrain.accumulate(untiled.down, levels, weights.ravel()), rtol=1e-12
    )
    p = downstream_product_tiled(
        tiled.down,
        TiledRaster.from_array(work / "f", factor, tile),
        TiledRaster.from_array(work / "s", stop.astype(np.uint8), tile),
        work / "p",
    )
    expected = terrain.downstream_product(untiled.down, levels, factor.ravel(), stop.ravel())
    np.testing.assert_allclose(p.to_array().ravel(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("tile", [4, 7, 16, 64])
def test_tiled_equals_untiled_with_a_lake_across_tiles(tmp_path: Path, tile: int) -> None:
    z = lake_dem()
    tiled = route_tiled(z, 10.0, tmp_path, tile=tile)
    assert_same_routing(tiled.load(), route_untiled(z, 10.0))
    layout = tiled.down.layout
    assert tiled.counts.tiles == layout.tile_rows * layout.tile_cols
    assert tiled.counts.fill_solves >= tiled.counts.tiles


def test_tiled_equals_untiled_on_the_demo_basin(tmp_path: Path) -> None:
    dem, networks = demo.make_dem(np.random.default_rng(demo.SEED))
    untiled = route_untiled(dem, demo.CELL)
    tiled = route_tiled(dem, demo.CELL, tmp_path, tile=37)  # 37 does not divide 200: ragged tiles
    assert tiled.counts.tiles == 36
    assert_same_routing(tiled.load(), untiled)
    planted = np.zeros(dem.shape, dtype=bool)
    for cells in networks.values():
        for r, c in cells:
            planted[r, c] = True
    current = model.build_flow_graph(dem, demo.CELL).accumulation
    ours = agreement(untiled.accumulation, planted, demo.CELL, 2.0)
    theirs = agreement(current, planted, demo.CELL, 2.0)
    print(f"demo basin, planted rivers found / derived on them: tileable {ours}, current {theirs}")
    assert ours[0] >= theirs[0] - 0.02
    assert ours[1] >= theirs[1] - 0.02


def agreement(
    acc: npt.NDArray[np.float64], network: npt.NDArray[np.bool_], cell: float, threshold_km2: float
) -> tuple[float, float]:
    """As tests/maps/test_mekong_rivers.py: network cells within 2 cells of a derived river, and back."""
    derived = acc * cell * cell / 1e6 >= threshold_km2
    to_derived = ndimage.distance_transform_edt(~derived)
    to_network = ndimage.distance_transform_edt(~network)
    return round(float((to_derived[network] <= 2).mean()), 3), round(
        float((to_network[derived] <= 2).mean()), 3
    )


@pytest.mark.realdata
def test_tiled_equals_untiled_on_the_mekong_tributary(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "mekong_srepok_hydrostreamer"
    grid = grid_for_bounds(raster_bounds_lonlat(folder / "DEM.tif"), 500.0)
    dem = load_dem(folder / "DEM.tif", grid)
    untiled = route_untiled(dem, grid.cell_size)
    tiled = route_tiled(dem, grid.cell_size, tmp_path, tile=24)  # 10 x 10 tiles
    assert tiled.counts.tiles == 100
    assert_same_routing(tiled.load(), untiled)
    published = rasterize_lines(gpd.read_file(folder / "rivers.geojson"), grid)
    ours = agreement(np.where(np.isfinite(dem), untiled.accumulation, 0.0), published, grid.cell_size, 25.0)
    graph = model.build_flow_graph(dem, grid.cell_size)
    theirs = agreement(np.where(graph.valid, graph.accumulation, 0.0), published, grid.cell_size, 25.0)
    print(f"Mekong tributary, published found / derived on it: tileable {ours}, current {theirs}")
    assert ours[0] >= 0.85
    assert ours[1] >= 0.85
    assert ours[0] >= theirs[0] - 0.02
    assert ours[1] >= theirs[1] - 0.02


def test_tiled_routing_on_dask_workers_equals_untiled(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from plastic_hotspots.cluster import ClusterOptions, open_cluster

    z = random_dem(5, 45, 38, holes=True)
    with open_cluster(ClusterOptions(workers=2)) as cluster:
        tiled = route_tiled(z, 10.0, tmp_path, tile=9, mapper=cluster.map_unordered)
    assert_same_routing(tiled.load(), route_untiled(z, 10.0))


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


def test_tiled_raster_round_trips_and_reads_windows(tmp_path: Path) -> None:
    values = np.arange(7 * 11, dtype=np.float64).reshape(7, 11)
    raster = TiledRaster.from_array(tmp_path / "r.tiles", values, 3)
    np.testing.assert_array_equal(raster.to_array(), values)
    np.testing.assert_array_equal(raster.read_window(-2, 5, 4, 20), values[0:5, 4:11])
    with pytest.raises(ValueError, match=r"tile \(2, 3\) has shape \(1, 2\), got values of \(3, 3\)"):
        raster.write(2, 3, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="tiles must be at least 2 cells wide"):
        TileLayout(5, 5, 1)


def test_seams_give_each_tile_its_neighbours_edges() -> None:
    layout = TileLayout(7, 8, 3)
    values = np.arange(56, dtype=np.float64).reshape(7, 8)
    seams = Seams(layout, np.float64, np.inf)
    for ti, tj in layout.tiles():
        r0, r1, c0, c1 = layout.window(ti, tj)
        assert seams.store(ti, tj, Border.of(values[r0:r1, c0:c1]))  # unknown -> values: a change
    padded = np.full((9, 10), np.nan)
    padded[1:-1, 1:-1] = values
    for ti, tj in layout.tiles():
        r0, r1, c0, c1 = layout.window(ti, tj)
        halo = seams.halo(ti, tj, np.nan).pad(values[r0:r1, c0:c1])
        np.testing.assert_array_equal(halo, padded[r0 : r1 + 2, c0 : c1 + 2])
    assert seams.store(1, 1, Border.of(values[3:6, 3:6])) is False


# --------------------------------------------------------------------------------------------------
# Layers, the large mode, memory
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.generate_demo_basin(tmp_path_factory.mktemp("demo"))


def test_tiled_population_and_dem_equal_the_whole_grid_loaders(demo_config: Path, tmp_path: Path) -> None:
    config = load_config(demo_config)
    grid = large_grid(config)
    assert config.population is not None
    expected = load_population(config.population, grid)
    for tile in (16, 37):
        people = regrid_population_tiled(config.population, grid, tmp_path / f"p{tile}", tile).to_array()
        np.testing.assert_array_equal(people, expected)
    dem = read_dem_tiled(config.dem, grid, tmp_path / "dem", 37).to_array()
    np.testing.assert_array_equal(dem, load_dem(config.dem, grid))


def write_population(path: Path, people: npt.NDArray[np.float64]) -> None:
    """People per pixel on a 0.01-degree lon/lat raster at 100-100.04 E, 19.96-20 N."""
    profile = {
        "driver": "GTiff",
        "width": 4,
        "height": 4,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": rasterio.transform.from_origin(100.0, 20.0, 0.01, 0.01),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(people.astype(np.float32)[None])


def test_tiled_population_keeps_the_total(tmp_path: Path) -> None:
    people = np.arange(16, dtype=np.float64).reshape(4, 4) * 10.0
    write_population(tmp_path / "pop.tif", people)
    grid = grid_for_bounds((99.99, 19.95, 100.05, 20.01), 100.0)  # holds the whole raster
    tiled = regrid_population_tiled(tmp_path / "pop.tif", grid, tmp_path / "p", 16).to_array()
    assert tiled.sum() == pytest.approx(people.sum(), rel=1e-12)
    np.testing.assert_array_equal(tiled, load_population(tmp_path / "pop.tif", grid))


def test_tiled_population_refuses_negative_counts(tmp_path: Path) -> None:
    path = tmp_path / "pop.tif"
    write_population(path, np.full((4, 4), -1.0))
    grid = grid_for_bounds((100.0, 19.96, 100.04, 20.0), 500.0)
    with pytest.raises(LayerError, match="has negative counts"):
        regrid_population_tiled(path, grid, tmp_path / "p", 8)


def test_large_mode_on_the_demo_basin(demo_config: Path, tmp_path: Path) -> None:
    config = load_config(demo_config)
    out = run_large(config, tmp_path / "large", tile=64, work_dir=tmp_path / "work")
    assert set(out.rasters) == {
        "dem",
        "population",
        "mismanaged_plastic",
        "p_land",
        "leakage_index",
        "river_load",
        "accumulation",
        "flow_accumulation",
    }
    grid = large_grid(config)
    # The same model in memory, on the same (untiled) routing of the burned DEM.
    dem = load_dem(config.dem, grid)
    # The mapped rivers as the large mode rasterized them, tile by tile (all_touched: a line through a
    # cell corner may touch a cell in one window and not in another; one cell of the demo's 40,000).
    layout = TileLayout(grid.height, grid.width, 64)
    mapped = TiledRaster(tmp_path / "work" / "mapped_rivers.tiles", layout, "uint8").to_array() == 1
    whole = rasterize_lines(gpd.read_file(config.rivers), grid) & np.isfinite(dem)
    assert int((mapped != whole).sum()) <= 1
    burned = np.where(mapped, dem - config.params.stream_burn_m, dem)
    routing = route_untiled(burned, grid.cell_size)
    down = routing.down
    levels = terrain.flow_levels(down)
    graph = model.FlowGraph(
        shape=grid.shape,
        cell_size=grid.cell_size,
        filled=routing.filled,
        down=down,
        levels=levels,
        step=terrain.step_length(down, grid.shape, grid.cell_size),
        slope=np.nan_to_num(terrain.slope(routing.filled, grid.cell_size), nan=0.0),
        accumulation=routing.accumulation,
        valid=np.isfinite(dem),
    )
    rivers = mapped | model.rivers_from_accumulation(graph, config.params.river_threshold_km2 * 4)
    p_land = model.land_transport_probability(graph, rivers, config.params)
    p_tiled, out_grid = read_band(out.rasters["p_land"])
    assert out_grid == grid
    np.testing.assert_allclose(p_tiled, p_land.astype(np.float32), rtol=1e-6)
    rivers_tiled = TiledRaster(tmp_path / "work" / "rivers.tiles", layout, "uint8").to_array()
    np.testing.assert_array_equal(rivers_tiled == 1, rivers)
    area, _ = read_band(out.rasters["flow_accumulation"])
    np.testing.assert_allclose(area, (routing.accumulation * grid.cell_area_m2 / 1e6).astype(np.float32))
    assert out.totals["population"] == pytest.approx(66909.44, rel=1e-6)
    leakage, _ = read_band(out.rasters["leakage_index"])
    assert float(np.nansum(leakage)) == pytest.approx(out.totals["leakage_kg_yr"], rel=1e-5)
    assert 0 < out.totals["leakage_kg_yr"] < out.totals["mismanaged_kg_yr"]
    provenance = json.loads(out.provenance.read_text())
    assert provenance["parameters"]["mode"] == "large (tiled)"
    with rasterio.open(out.rasters["leakage_index"]) as src:
        assert src.tags(1)["unit"] == "kg/yr"
        assert "PROVENANCE" in src.tags()


MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    from plastic_hotspots.maps.kernels.compiled import warm_up
    from plastic_hotspots.maps.large.routing import route_tiled
    from plastic_hotspots.maps.large.store import TiledRaster, TileLayout

    work, side, tile = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    dem = TiledRaster.create(work / "dem.tiles", TileLayout(side, side, tile), "float64")
    for ti, tj in dem.layout.tiles():  # rough terrain with pits and flats, written tile by tile
        r0, r1, c0, c1 = dem.layout.window(ti, tj)
        rows = np.arange(r0, r1)[:, None] * 0.05
        dem.write(ti, tj, np.round(rows + rng.random((r1 - r0, c1 - c0)) * 3.0))
    def status():
        out = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
        return out
    warm_up()  # compiling the kernels is start-up, like an import
    open("/proc/self/clear_refs", "w").write("5")
    before = status()
    routing = route_tiled(dem, 10.0, work, tile=tile)
    after = status()
    acc = sum(float(routing.accumulation.read(ti, tj).max()) for ti, tj in dem.layout.tiles())
    print(json.dumps({"growth": after["VmHWM"] - before["VmRSS"], "acc": acc}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_tiled_routing_holds_less_memory_than_the_raster(tmp_path: Path) -> None:
    side, tile = 1536, 128  # 18 MiB of float64 DEM, 144 tiles of 128 KiB
    raster_bytes = side * side * 8
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(tmp_path), str(side), str(tile)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = figures["growth"] / 2**20
    print(f"peak RSS growth routing {raster_bytes >> 20} MiB of DEM in tiles of {tile}: {growth:.1f} MiB")
    assert figures["acc"] > 0
    # Holding the DEM alone would take raster_bytes; the whole-grid routing needs about 25 times that.
    # Tiled: ~200 bytes per cell of one tile, plus ~100 bytes per cell on the tiles' edges (4 / tile
    # of the cells): about 9.5 MiB here.
    assert figures["growth"] < raster_bytes
