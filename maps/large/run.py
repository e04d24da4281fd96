"""The hotspot model's large mode: a basin whose grid does not fit in memory, computed tile by tile.

:func:`run_large` takes the same basin config as ``plastic-hotspots hotspots``
(:func:`plastic_hotspots.maps.wholegrid.run.run_hotspots`; ``plastic-hotspots hotspots --tile N``) and holds a
few tiles in
memory at a time. It computes:

* the DEM on the grid (bilinear, :func:`plastic_hotspots.maps.large.inputs.read_dem_tiled`), with the mapped
rivers
  (if the config names them) burned in by ``stream_burn_m``;
* the tileable routing of :mod:`plastic_hotspots.maps.large.routing`: plain depression fill, flats drained to
their nearest
  outlet, D8, upstream area;
* rivers: cells draining at least ``river_threshold_km2`` (4x that, plus the mapped rivers, when a
  river network is given), as the pipeline does;
* the basin: the cells draining to ``outlet`` (snapped to the largest flow within 5 cells), or every
  cell with data;
* population (sum-preserving) and the service zones' figures (defaults where none), and from them
  the mismanaged plastic ``L_src``;
* ``P_land``, the probability of reaching a river along the flow path (a tiled downstream product),
  and the leakage index ``L_src x P_land``;
* stream order, river loads and retention at barriers (:mod:`plastic_hotspots.maps.large.rivers`);
* the ranked leakage and accumulation hotspots (:mod:`plastic_hotspots.maps.large.hotspots`).

It writes the whole-grid run's rasters, under the same names, as Cloud-Optimised GeoTIFFs (windowed
writes into a tiled GeoTIFF, then a streaming copy to COG), ``hotspots.gpkg`` (basin, rivers,
barriers, hotspots: :mod:`plastic_hotspots.maps.large.outputs`) and ``provenance.json``. It does not compute
what
needs a survey or the whole basin's graph at once: observed density and calibration (so no observed
extra source), and sub-basins. On a basin that fits, and the same routing, every value equals the
whole-grid run's: exactly for the DEM, areas, rivers, population, mismanaged plastic, stream orders
and the hotspots' cells, to rounding for the sums and products along flow paths (``P_land``, the
leakage index, river loads).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio

from plastic_hotspots.maps.config import BasinConfig
from plastic_hotspots.maps.inputs.vectors import (
    Barriers,
    load_barriers,
    rasterize_lines,
    read_vector,
    read_zones,
)
from plastic_hotspots.maps.io.results import RASTERS, UNCERTAINTY_JSON
from plastic_hotspots.maps.io.writers import write_json, write_provenance_json
from plastic_hotspots.maps.large.hotspots import medians_tiled, pick_peaks_tiled
from plastic_hotspots.maps.large.inputs import (
    read_dem_tiled,
    regrid_population_tiled,
    tile_grid,
    zones_for_tile,
)
from plastic_hotspots.maps.large.mapper import LazyTasks, Mapper, serial_map
from plastic_hotspots.maps.large.openwater import mask_open_water_tiled
from plastic_hotspots.maps.large.outputs import (
    basin_polygon,
    river_lines,
    write_large_gpkg,
    write_tiled_raster,
)
from plastic_hotspots.maps.large.rivers import river_layers_tiled, route_rivers_tiled
from plastic_hotspots.maps.large.routing import TileCounts, TiledRouting, route_tiled
from plastic_hotspots.maps.large.store import Border, TiledRaster, TileLayout
from plastic_hotspots.maps.large.sweeps import downstream_product_tiled
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.maps.science.basin import (
    barrier_kinds,
    basin_grid,
    check_basin_size,
    check_mass_balance,
    driver_reference,
    outlet_cell,
    river_threshold_km2,
    run_provenance,
    snap_barriers,
    warn_unplaced_barriers,
)
from plastic_hotspots.maps.science.uncertainty import LARGE_MODE_UNCERTAINTY_NOTE, skipped_document
from plastic_hotspots.maps.science.vectors import barrier_frame, basin_frame, hotspot_frame
from plastic_hotspots.progress import progress_bar
from plastic_hotspots.records import GridSpec, Hotspot, Provenance

__all__ = ["LargeOutputs", "run_large"]

FloatArray = npt.NDArray[np.float64]

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class LargeOutputs:
    """What :func:`run_large` wrote and found.

    Attributes:
        directory: The output folder.
        rasters: Path of each output raster, by layer name (the names of the whole-grid run).
        vectors: ``hotspots.gpkg``.
        provenance: ``provenance.json``.
        counts: Tile solves of the routing.
        totals: Basin figures: ``basin_cells``, ``river_cells``, ``population``,
            ``mismanaged_kg_yr``, ``leakage_kg_yr``, ``retained_kg_yr``, ``exported_kg_yr``.
        hotspots: The ranked leakage and accumulation hotspots.
    """

    directory: Path
    rasters: dict[str, Path]
    vectors: Path
    provenance: Path
    counts: TileCounts
    totals: dict[str, float]
    hotspots: tuple[Hotspot, ...]

    def moved_to(self, written: Path, final: Path) -> LargeOutputs:
        """The same outputs after the folder ``written`` became ``final``."""

        def moved(path: Path) -> Path:
            return final / path.relative_to(written)

        return dataclasses.replace(
            self,
            directory=final,
            rasters={name: moved(path) for name, path in self.rasters.items()},
            vectors=moved(self.vectors),
            provenance=moved(self.provenance),
        )


@dataclass(frozen=True, slots=True, eq=False)
class PrepTask:
    """Per-tile layers after routing: overland factor, rivers, mismanaged plastic."""

    ti: int
    tj: int
    grid: GridSpec
    params: HotspotParams
    river_km2: float
    filled: TiledRaster
    filled_halo: Border
    down: TiledRaster
    accumulation: TiledRaster
    mapped: TiledRaster | None
    basin: TiledRaster | None
    population: TiledRaster | None
    zones: gpd.GeoDataFrame
    factor_out: TiledRaster
    rivers_out: TiledRaster
    source_out: TiledRaster
    slope_out: TiledRaster
    step_out: TiledRaster
    collection_out: TiledRaster
    basin_out: TiledRaster


def _step_length(
    down: npt.NDArray[np.int64], window: tuple[int, int, int, int], cols: int, size: float
) -> FloatArray:
    """:func:`plastic_hotspots.maps.science.terrain.step_length` of one tile."""
    r0, r1, c0, c1 = window
    rows = np.arange(r0, r1, dtype=np.int64)[:, None]
    cells = rows * cols + np.arange(c0, c1, dtype=np.int64)[None, :]
    target = np.where(down >= 0, down, cells)
    t_row, t_col = np.divmod(target, cols)
    diagonal = (t_row != rows) & (t_col != np.arange(c0, c1)[None, :])
    return np.where(diagonal, size * SQRT2, size).astype(np.float64)


def _slope(
    filled: FloatArray, halo: Border, window: tuple[int, int, int, int], shape: tuple[int, int], size: float
) -> FloatArray:
    """The slope of one tile, bit for bit: the halo, edge-replicated off the grid.

    :func:`plastic_hotspots.maps.science.terrain.slope` on the tile.
    """
    r0, r1, c0, c1 = window
    padded = halo.pad(filled)
    if r0 == 0:
        padded[0, :] = padded[1, :]
    if r1 == shape[0]:
        padded[-1, :] = padded[-2, :]
    if c0 == 0:
        padded[:, 0] = padded[:, 1]
    if c1 == shape[1]:
        padded[:, -1] = padded[:, -2]
    return terrain.slope(padded, size)[1:-1, 1:-1]


def prep_tile(task: PrepTask) -> tuple[int, int, float, float]:
    """Run a :class:`PrepTask`; returns basin cells, river cells, people and mismanaged plastic (kg/yr)."""
    lay = task.filled.layout
    window = lay.window(task.ti, task.tj)
    size = task.grid.cell_size
    params = task.params
    filled = task.filled.read(task.ti, task.tj)
    valid = np.isfinite(filled)
    basin = valid if task.basin is None else valid & (task.basin.read(task.ti, task.tj) == 1.0)
    slope = np.nan_to_num(_slope(filled, task.filled_halo, window, lay.shape, size), nan=0.0)
    step = _step_length(task.down.read(task.ti, task.tj), window, lay.cols, size)
    task.slope_out.write(task.ti, task.tj, slope)
    task.step_out.write(task.ti, task.tj, step)
    task.basin_out.write(task.ti, task.tj, basin.astype(np.uint8))
    lam = params.land_lambda_m * (1.0 + params.land_lambda_slope_gain * slope)
    task.factor_out.write(task.ti, task.tj, np.exp(-step / lam))
    cell_km2 = size * size / 1e6
    rivers = (task.accumulation.read(task.ti, task.tj) * cell_km2 >= task.river_km2) & valid
    if task.mapped is not None:
        rivers |= task.mapped.read(task.ti, task.tj).astype(np.bool_)
    rivers &= basin
    task.rivers_out.write(task.ti, task.tj, rivers.astype(np.uint8))
    people = (
        task.population.read(task.ti, task.tj)
        if task.population is not None
        else np.zeros(filled.shape, dtype=np.float64)
    )
    zones = zones_for_tile(task.zones, task.grid, lay, task.ti, task.tj, params.zone_defaults)
    source = model.mismanaged_plastic(
        people, zones.generation_kg_per_cap_day, zones.plastic_share, zones.collection_rate
    )
    source = np.where(basin, source, 0.0)
    task.source_out.write(task.ti, task.tj, source)
    task.collection_out.write(task.ti, task.tj, zones.collection_rate)
    return int(basin.sum()), int(rivers.sum()), float(people[basin].sum()), float(source.sum())


def _rasterize_rivers(lines: gpd.GeoDataFrame, grid: GridSpec, layout: TileLayout, work: Path) -> TiledRaster:
    """The cells the mapped rivers touch, rasterized tile by tile (1: touched).

    Called outside the run's small GDAL block cache: GDAL cuts a rasterization into chunks of rows
    by its cache size, and lines touch slightly different cells in different chunkings; with the
    default cache a tile is one chunk, as the pipeline's whole grid is.
    """
    touched = TiledRaster.create(work / "touched_rivers.tiles", layout, np.uint8)
    projected = lines.to_crs(grid.crs)
    for ti, tj in layout.tiles():
        touched.write(ti, tj, rasterize_lines(projected, tile_grid(grid, layout, ti, tj)).astype(np.uint8))
    return touched


def _burn_rivers(
    dem: TiledRaster, touched: TiledRaster, burn_m: float, work: Path
) -> tuple[TiledRaster, TiledRaster]:
    """Burn the mapped rivers (on cells with data) into the DEM: ``(burned DEM, rivers)``."""
    lay = dem.layout
    mapped = TiledRaster.create(work / "mapped_rivers.tiles", lay, np.uint8)
    burned = TiledRaster.create(work / "dem.tiles", lay, np.float64)
    for ti, tj in lay.tiles():
        z = dem.read(ti, tj)
        river = touched.read(ti, tj).astype(np.bool_) & np.isfinite(z)
        mapped.write(ti, tj, river.astype(np.uint8))
        burned.write(ti, tj, np.where(river, z - burn_m, z) if burn_m > 0 else z)
    return burned, mapped


def _basin(
    config: BasinConfig, grid: GridSpec, down: TiledRaster, accumulation: TiledRaster, work: Path, run: Mapper
) -> TiledRaster | None:
    """The cells draining to the config's outlet (1.0 there, 0.0 elsewhere); None without an outlet."""
    if config.outlet is None:
        return None
    outlet = outlet_cell(config.outlet, grid, accumulation.read_window)
    lay = down.layout
    ones = TiledRaster.create(work / "ones.tiles", lay, np.float64)
    stop = TiledRaster.create(work / "outlet.tiles", lay, np.uint8)
    for ti, tj in lay.tiles():
        wr0, wr1, wc0, wc1 = lay.window(ti, tj)
        ones.write(ti, tj, np.ones((wr1 - wr0, wc1 - wc0)))
        mark = np.zeros((wr1 - wr0, wc1 - wc0), dtype=np.uint8)
        orow, ocol = divmod(outlet, grid.width)
        if wr0 <= orow < wr1 and wc0 <= ocol < wc1:
            mark[orow - wr0, ocol - wc0] = 1
        stop.write(ti, tj, mark)
    basin = downstream_product_tiled(down, ones, stop, work / "basin.tiles", mapper=run)
    check_basin_size(
        sum(int(np.count_nonzero(basin.read(ti, tj) == 1.0)) for ti, tj in lay.tiles()), config.outlet
    )
    return basin


STEPS = 8
LARGE_LAYERS: tuple[tuple[str, str, str], ...] = tuple(
    (raster.name, raster.unit, raster.description) for raster in RASTERS.values()
)
"""``(name, unit, description)`` of each raster written, in the schema's order (:data:`RASTERS`)."""


def run_large(
    config: BasinConfig,
    out_dir: Path,
    *,
    tile: int = 1024,
    work_dir: Path | None = None,
    mapper: Mapper | None = None,
    cog: bool = True,
    gdal_cache_mb: int = 16,
) -> LargeOutputs:
    """Run the hotspot model's large mode (see the module docstring) and write its outputs.

    Memory: a few arrays of ``tile x tile`` cells, plus the tiles' edges
    (``4 x rows x cols / tile`` values per raster being relaxed) and GDAL's block cache
    (``gdal_cache_mb``). Disk: about 170 bytes per cell under ``work_dir``.

    Args:
        config: The basin config.
        out_dir: Output folder (created if missing).
        tile: Tile edge in cells (a multiple of 256 keeps the GeoTIFF writes aligned with its blocks).
        work_dir: Folder for the intermediate tiles (default ``out_dir / ".work"``); kept afterwards.
        mapper: Runs the tile tasks (default: one after another here; see
        :class:`plastic_hotspots.maps.large.routing.Mapper`).
        cog: Write Cloud-Optimised GeoTIFFs (else plain tiled GeoTIFFs).
        gdal_cache_mb: GDAL's raster block cache for the run, MB.

    Returns:
        The paths written and the basin's totals.

    Raises:
        LayerError: A layer cannot be used (as in the pipeline).
    """
    grid = basin_grid(config)
    layout = TileLayout(grid.height, grid.width, tile)
    work = Path(work_dir) if work_dir is not None else Path(out_dir) / ".work"
    work.mkdir(parents=True, exist_ok=True)
    with progress_bar() as bar:
        task = bar.add_task("Reading the DEM", total=STEPS)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=name)

        touched = (
            _rasterize_rivers(read_vector(config.rivers, "rivers"), grid, layout, work)
            if config.rivers
            else None
        )
        with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb):
            run = mapper or serial_map
            return _run_tiles(config, grid, layout, work, Path(out_dir), run, touched, step, cog)


def _run_tiles(
    config: BasinConfig,
    grid: GridSpec,
    layout: TileLayout,
    work: Path,
    out: Path,
    run: Mapper,
    touched: TiledRaster | None,
    step: Callable[[str], None],
    cog: bool,
) -> LargeOutputs:
    """The body of :func:`run_large`, under the run's GDAL settings; ``step`` names each step begun."""
    dem = read_dem_tiled(config.dem, grid, work / "dem_input.tiles", layout.tile)
    dem = mask_open_water_tiled(dem, config.params.sea_level_m, work, mapper=run)  # the sea drains out
    mapped: TiledRaster | None = None
    if touched is not None:
        dem, mapped = _burn_rivers(dem, touched, config.params.stream_burn_m, work)
    step("Conditioning the DEM and routing flow")
    routing = route_tiled(dem, grid.cell_size, work, mapper=run)
    step("Delineating the basin")
    basin = _basin(config, grid, routing.down, routing.accumulation, work, run)
    step("Mismanaged plastic")
    population = (
        regrid_population_tiled(config.population, grid, work / "population.tiles", layout.tile)
        if config.population
        else None
    )
    made, totals = _prepare_tiles(config, grid, layout, work, run, routing, mapped, basin, population)
    step("Overland transport to rivers")
    p_land = downstream_product_tiled(
        routing.down, made["land_factor"], made["rivers"], work / "p_land.tiles", mapper=run
    )
    step("Routing along rivers")
    network = _route_rivers(config, grid, work, run, routing, made, p_land)
    leakage_total, retained_total = _total(network.layers["leakage"]), _total(network.retained)
    check_mass_balance(leakage_total, retained_total, network.exported)
    step("Ranking hotspots")
    hotspots = _rank_hotspots(config.params, grid, run, made, population, p_land, network)
    step("Writing outputs")
    provenance = run_provenance(
        config,
        grid,
        {
            "mode": "large (tiled)",
            "tile": layout.tile,
            "tiles": routing.counts.tiles,
            "fill_solves": routing.counts.fill_solves,
            "flat_solves": routing.counts.flat_solves,
            "order_solves": network.order_solves,
            "exported_kg_yr": network.exported,
        },
        tool_suffix="large",
    )
    out.mkdir(parents=True, exist_ok=True)
    rasters = _write_rasters(out, grid, layout, routing, made, population, p_land, network, provenance, cog)
    basin_cells, river_cells, people_total, source_total = totals.tolist()
    vectors = {"basin": basin_frame(config.name, basin_cells, basin_polygon(made["in_basin"], grid), grid)}
    if network.barriers is not None:
        held = [
            _at(network.retained, *divmod(c, grid.width)) if c >= 0 else 0.0 for c in network.barrier_cells
        ]
        vectors["barriers"] = barrier_frame(network.barriers, network.barrier_cells, held, grid.crs)
    for kind in ("leakage", "accumulation"):
        vectors[f"{kind}_hotspots"] = hotspot_frame([h for h in hotspots if h.kind == kind])
    gpkg = write_large_gpkg(
        out / "hotspots.gpkg",
        vectors,
        river_lines(made["rivers"], routing.down, network.layers["order"], grid),
        provenance,
    )
    step("Hotspot model done (large mode)")
    summary = {
        "basin_cells": basin_cells,
        "river_cells": river_cells,
        "population": people_total,
        "mismanaged_kg_yr": source_total,
        "leakage_kg_yr": leakage_total,
        "retained_kg_yr": retained_total,
        "exported_kg_yr": network.exported,
    }
    prov_path = write_provenance_json(out / "provenance.json", provenance, {"totals": summary})
    write_json(
        UNCERTAINTY_JSON.path(out),
        skipped_document(config.uncertainty, config.params, LARGE_MODE_UNCERTAINTY_NOTE),
    )
    return LargeOutputs(
        directory=out,
        rasters=rasters,
        vectors=gpkg,
        provenance=prov_path,
        counts=routing.counts,
        totals=summary,
        hotspots=tuple(hotspots),
    )


def _prepare_tiles(
    config: BasinConfig,
    grid: GridSpec,
    layout: TileLayout,
    work: Path,
    run: Mapper,
    routing: TiledRouting,
    mapped: TiledRaster | None,
    basin: TiledRaster | None,
    population: TiledRaster | None,
) -> tuple[dict[str, TiledRaster], FloatArray]:
    """Per-tile layers after routing (:func:`prep_tile` on every tile) and the basin's four totals."""
    params = config.params
    tiles = list(layout.tiles())
    zones = (
        read_zones(config.zones, params.zone_defaults).to_crs(grid.crs)
        if config.zones
        else gpd.GeoDataFrame(geometry=[], crs=grid.crs)
    )
    made = {
        name: TiledRaster.create(work / f"{name}.tiles", layout, dtype)
        for name, dtype in (
            ("land_factor", np.float64),
            ("rivers", np.uint8),
            ("mismanaged_plastic", np.float64),
            ("slope", np.float64),
            ("step", np.float64),
            ("collection_rate", np.float64),
            ("in_basin", np.uint8),
        )
    }
    river_km2 = river_threshold_km2(params, mapped is not None)

    def prep_task(i: int) -> PrepTask:
        ti, tj = tiles[i]
        return PrepTask(
            ti,
            tj,
            grid,
            params,
            river_km2,
            routing.filled,
            routing.filled_seams.halo(ti, tj, np.nan),
            routing.down,
            routing.accumulation,
            mapped,
            basin,
            population,
            zones,
            made["land_factor"],
            made["rivers"],
            made["mismanaged_plastic"],
            made["slope"],
            made["step"],
            made["collection_rate"],
            made["in_basin"],
        )

    totals = np.zeros(4)
    for _, figures in run(prep_tile, LazyTasks(len(tiles), prep_task)):
        totals += np.array(figures, dtype=np.float64)
    return made, totals


@dataclass(frozen=True, slots=True, eq=False)
class _Network:
    """The rivers of a large run: barriers, the per-tile river layers, and the routed load."""

    barriers: Barriers | None
    barrier_cells: list[int]
    layers: dict[str, TiledRaster]
    order_solves: int
    load: TiledRaster
    retained: TiledRaster
    exported: float


def _route_rivers(
    config: BasinConfig,
    grid: GridSpec,
    work: Path,
    run: Mapper,
    routing: TiledRouting,
    made: dict[str, TiledRaster],
    p_land: TiledRaster,
) -> _Network:
    """Barriers snapped to the rivers, the river layers (leakage, order, pass factors), the routed load."""
    params = config.params
    rivers = made["rivers"]
    barriers = load_barriers(config.barriers, grid, params.barrier_pass) if config.barriers else None
    barrier_cells = snap_barriers(barriers, grid, rivers.read_window) if barriers is not None else []
    if barriers is not None:
        warn_unplaced_barriers(barriers, grid, barrier_cells)
    layers, order_solves = river_layers_tiled(
        grid,
        params,
        {
            "down": routing.down,
            "rivers": rivers,
            "slope": made["slope"],
            "step": made["step"],
            "source": made["mismanaged_plastic"],
            "p_land": p_land,
            "basin": made["in_basin"],
        },
        barrier_cells,
        barriers.pass_factor.tolist() if barriers is not None else [],
        work,
        mapper=run,
    )
    load, retained, exported = route_rivers_tiled(routing.down, rivers, layers, work, mapper=run)
    return _Network(barriers, barrier_cells, layers, order_solves, load, retained, exported)


def _rank_hotspots(
    params: HotspotParams,
    grid: GridSpec,
    run: Mapper,
    made: dict[str, TiledRaster],
    population: TiledRaster | None,
    p_land: TiledRaster,
    network: _Network,
) -> list[Hotspot]:
    """The ranked leakage and accumulation hotspots, as the whole-grid run ranks them."""
    sep = max(1, round(params.hotspot_separation_m / grid.cell_size))
    hotspots = _leakage_hotspots(
        grid,
        pick_peaks_tiled(network.layers["leakage"], params.top_n, sep, mapper=run),
        made["mismanaged_plastic"],
        population,
        made["collection_rate"],
        p_land,
        network.layers["leakage"],
    )
    kind_at = barrier_kinds(network.barriers, network.barrier_cells)
    hotspots += [
        model.accumulation_hotspot(
            grid,
            rank,
            (r, c),
            _at(network.retained, r, c),
            load=_at(network.load, r, c),
            pass_factor=_at(network.layers["pass_factor"], r, c),
            slope=_at(made["slope"], r, c),
            barrier=kind_at.get(r * grid.width + c),
            low_slope=params.low_slope,
        )
        for rank, (r, c) in enumerate(
            pick_peaks_tiled(network.retained, params.top_n, sep, mapper=run), start=1
        )
    ]
    return hotspots


def _write_rasters(
    out: Path,
    grid: GridSpec,
    layout: TileLayout,
    routing: TiledRouting,
    made: dict[str, TiledRaster],
    population: TiledRaster | None,
    p_land: TiledRaster,
    network: _Network,
    provenance: Provenance,
    cog: bool,
) -> dict[str, Path]:
    """The output rasters, tile by tile, masked to the basin (the DEM whole)."""
    in_basin = made["in_basin"]

    def masked(raster: TiledRaster | None, scale: float = 1.0) -> Callable[[int, int], FloatArray]:
        def values(ti: int, tj: int) -> FloatArray:
            inside = in_basin.read(ti, tj).astype(np.bool_)
            if raster is None:
                return np.where(inside, 0.0, np.nan)
            return np.where(inside, raster.read(ti, tj) * scale, np.nan)

        return values

    sources: dict[str, Callable[[int, int], FloatArray]] = {
        "dem": routing.filled.read,
        "population": masked(population),
        "mismanaged_plastic": masked(made["mismanaged_plastic"]),
        "p_land": masked(p_land),
        "leakage_index": masked(network.layers["leakage"]),
        "river_load": masked(network.load),
        "accumulation": masked(network.retained),
        "flow_accumulation": masked(routing.accumulation, grid.cell_area_m2 / 1e6),
    }
    return {
        name: write_tiled_raster(
            out / f"{name}.tif", grid, layout, sources[name], provenance, description=text, unit=unit, cog=cog
        )
        for name, unit, text in LARGE_LAYERS
    }


def _total(raster: TiledRaster) -> float:
    """The sum of a tiled raster, tile by tile."""
    return sum((float(raster.read(ti, tj).sum()) for ti, tj in raster.layout.tiles()), 0.0)


def _at(raster: TiledRaster, row: int, col: int) -> float:
    """One cell's value."""
    return float(raster.read_window(row, row + 1, col, col + 1)[0, 0])


def _leakage_hotspots(
    grid: GridSpec,
    peaks: list[tuple[int, int]],
    source: TiledRaster,
    population: TiledRaster | None,
    collection: TiledRaster,
    p_land: TiledRaster,
    leakage: TiledRaster,
) -> list[Hotspot]:
    """The ranked leakage hotspots, with the whole-grid run's drivers and their basin medians."""
    lay = source.layout

    def chunks() -> Iterator[list[FloatArray]]:
        for ti, tj in lay.tiles():
            populated = source.read(ti, tj) > 0
            people = population.read(ti, tj) if population is not None else np.zeros(populated.shape)
            yield [
                people[populated],
                (1.0 - collection.read(ti, tj))[populated],
                p_land.read(ti, tj)[populated],
            ]

    medians = medians_tiled(chunks, 3)
    population_median, poor_collection_median, near_river_median = medians
    # The large mode reads no survey: no observed extra source.
    ref = driver_reference(population_median, poor_collection_median, near_river_median, observed_litter=0.0)
    return [
        model.leakage_hotspot(
            grid,
            rank,
            (r, c),
            _at(leakage, r, c),
            population=_at(population, r, c) if population is not None else 0.0,
            collection_rate=_at(collection, r, c),
            p_land=_at(p_land, r, c),
            observed_extra=0.0,
            reference=ref,
        )
        for rank, (r, c) in enumerate(peaks, start=1)
    ]
