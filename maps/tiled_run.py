"""The hotspot model's large mode: a basin whose grid does not fit in memory, computed tile by tile.

:func:`run_large` takes the same basin config as ``plastic-hotspots hotspots``
(:func:`maps.pipeline.run_hotspots`) and holds a few tiles in memory at a time. It computes:

* the DEM on the grid (bilinear, :func:`maps.tiled_layers.read_dem_tiled`), with the mapped rivers
  (if the config names them) burned in by ``stream_burn_m``;
* the tileable routing of :mod:`maps.tiled`: plain depression fill, flats drained to their nearest
  outlet, D8, upstream area;
* rivers: cells draining at least ``river_threshold_km2`` (4x that, plus the mapped rivers, when a
  river network is given), as the pipeline does;
* the basin: the cells draining to ``outlet`` (snapped to the largest flow within 5 cells), or every
  cell with data;
* population (sum-preserving) and the service zones' figures (defaults where none), and from them
  the mismanaged plastic ``L_src``;
* ``P_land``, the probability of reaching a river along the flow path (a tiled downstream product),
  and the leakage index ``L_src x P_land``.

It writes these as Cloud-Optimised GeoTIFFs (windowed writes into a tiled GeoTIFF, then a streaming
copy to COG) with a provenance file. It does not compute what needs the whole basin at once or a
survey: observed density and calibration (so no observed extra source), stream order, river loads
and retention at barriers, sub-basins, ranked hotspots and the GeoPackage. Its conditioning is not
the pipeline's (no epsilon; see :mod:`maps.tiled`), so its rasters differ slightly from a pipeline
run on a basin that fits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.shutil
from rasterio.transform import Affine

from maps import model, terrain
from maps.config import BasinConfig
from maps.errors import LayerError
from maps.grid import grid_for_bounds, lonlat_to_grid, rowcol
from maps.layers import raster_bounds_lonlat, rasterize_lines, read_vector
from maps.params import HotspotParams
from maps.tiled import TileCounts, route_tiled
from maps.tiled_layers import read_dem_tiled, regrid_population_tiled, tile_grid, zones_for_tile
from maps.tiled_mapper import LazyTasks, Mapper, serial_map
from maps.tiled_store import Border, TiledRaster, TileLayout
from maps.tiled_sweeps import downstream_product_tiled
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.provenance import make_provenance
from plastic_hotspots.records import GridSpec, Provenance

__all__ = ["LargeOutputs", "large_grid", "run_large"]

FloatArray = npt.NDArray[np.float64]

SQRT2 = math.sqrt(2.0)
MIN_BASIN_CELLS = 4
OUTLET_SNAP_CELLS = 5


@dataclass(frozen=True, slots=True)
class LargeOutputs:
    """What :func:`run_large` wrote and found.

    Attributes:
        directory: The output folder.
        rasters: Path of each output raster, by layer name.
        provenance: ``provenance.json``.
        counts: Tile solves of the routing.
        totals: Basin figures: ``basin_cells``, ``river_cells``, ``population``,
            ``mismanaged_kg_yr``, ``leakage_kg_yr``.
    """

    directory: Path
    rasters: dict[str, Path]
    provenance: Path
    counts: TileCounts
    totals: dict[str, float]


def large_grid(config: BasinConfig) -> GridSpec:
    """The grid of a basin config (as the pipeline chooses it)."""
    bounds = config.area_of_interest or raster_bounds_lonlat(config.dem)
    return grid_for_bounds(bounds, config.params.cell_size_m, config.crs)


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


def _step_length(
    down: npt.NDArray[np.int64], window: tuple[int, int, int, int], cols: int, size: float
) -> FloatArray:
    """:func:`maps.terrain.step_length` of one tile."""
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
    """:func:`maps.terrain.slope` of one tile, bit for bit: the halo, edge-replicated off the grid."""
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
    return int(basin.sum()), int(rivers.sum()), float(people[basin].sum()), float(source.sum())


def _burn_rivers(
    dem: TiledRaster, lines: gpd.GeoDataFrame, grid: GridSpec, burn_m: float, work: Path
) -> tuple[TiledRaster, TiledRaster]:
    """Rasterize the mapped rivers per tile and burn them into the DEM: ``(burned DEM, rivers)``."""
    lay = dem.layout
    mapped = TiledRaster.create(work / "mapped_rivers.tiles", lay, np.uint8)
    burned = TiledRaster.create(work / "dem.tiles", lay, np.float64)
    projected = lines.to_crs(grid.crs)
    for ti, tj in lay.tiles():
        z = dem.read(ti, tj)
        river = rasterize_lines(projected, tile_grid(grid, lay, ti, tj)) & np.isfinite(z)
        mapped.write(ti, tj, river.astype(np.uint8))
        burned.write(ti, tj, np.where(river, z - burn_m, z) if burn_m > 0 else z)
    return burned, mapped


def _basin(
    config: BasinConfig, grid: GridSpec, down: TiledRaster, accumulation: TiledRaster, work: Path, run: Mapper
) -> TiledRaster | None:
    """The cells draining to the config's outlet (1.0 there, 0.0 elsewhere); None without an outlet."""
    if config.outlet is None:
        return None
    ox, oy = lonlat_to_grid(grid, np.array([config.outlet[0]]), np.array([config.outlet[1]]))
    rows, cols, inside = rowcol(grid, ox, oy)
    if not bool(inside[0]):
        raise LayerError(
            f"the outlet {config.outlet} lies outside the grid",
            hint="give the outlet as [lon, lat] inside the DEM's extent",
        )
    r, c, k = int(rows[0]), int(cols[0]), OUTLET_SNAP_CELLS
    r0, c0 = max(r - k, 0), max(c - k, 0)
    near = accumulation.read_window(r - k, r + k + 1, c - k, c + k + 1)
    sr, sc = terrain.snap_to_max(near, r - r0, c - c0, k)
    outlet = (sr + r0) * grid.width + (sc + c0)
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
    cells = sum(int(np.count_nonzero(basin.read(ti, tj) == 1.0)) for ti, tj in lay.tiles())
    if cells < MIN_BASIN_CELLS:
        raise LayerError(
            f"only {cells} cells drain to the outlet {list(config.outlet)}: the basin is empty",
            hint="put the outlet on the main river (it is snapped to the largest flow within "
            "5 cells), or leave it out to model the whole DEM",
        )
    return basin


def _block(tile: int) -> int:
    """GeoTIFF block edge: the largest of 512 ... 16 dividing the tile (each write fills whole blocks)."""
    return next((b for b in (512, 256, 128, 64, 32, 16) if tile % b == 0), 256)


def _write_raster(
    path: Path,
    grid: GridSpec,
    layout: TileLayout,
    values: Callable[[int, int], FloatArray],
    provenance: Provenance,
    *,
    description: str,
    unit: str,
    cog: bool,
) -> Path:
    """Write one float32 band tile by tile (windowed writes), then as a COG if ``cog``; atomically."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "float32",
        "crs": grid.crs,
        "transform": Affine(*grid.transform),
        "nodata": float("nan"),
        "compress": "DEFLATE",
        "predictor": 3,
        "tiled": True,
        "blockxsize": _block(layout.tile),
        "blockysize": _block(layout.tile),
        "BIGTIFF": "IF_SAFER",
    }
    if cog:  # the COG copy compresses: the staging file need not
        profile = {k: v for k, v in profile.items() if k not in ("compress", "predictor")}
    with atomic_path(path) as tmp:
        staging = tmp.with_name(tmp.stem + "-tiles.tif") if cog else tmp
        try:
            with rasterio.open(staging, "w", **profile) as dst:
                for ti, tj in layout.tiles():
                    r0, r1, c0, c1 = layout.window(ti, tj)
                    window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
                    dst.write(values(ti, tj).astype(np.float32), 1, window=window)
                dst.set_band_description(1, description)
                dst.update_tags(1, unit=unit)
                dst.update_tags(PROVENANCE=provenance.to_json())
            if cog:
                rasterio.shutil.copy(
                    staging,
                    tmp,
                    driver="COG",
                    COMPRESS="DEFLATE",
                    PREDICTOR="3",
                    BLOCKSIZE="256",
                    OVERVIEW_RESAMPLING="AVERAGE",
                    BIGTIFF="IF_SAFER",
                )
        finally:
            if cog and staging.exists():
                staging.unlink()
    return path


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
    """Run the hotspot model's large mode (see the module docstring) and write its rasters.

    Memory: a few arrays of ``tile x tile`` cells, plus the tiles' edges
    (``4 x rows x cols / tile`` values per raster being relaxed) and GDAL's block cache
    (``gdal_cache_mb``). Disk: about 60 bytes per cell under ``work_dir``.

    Args:
        config: The basin config.
        out_dir: Output folder (created if missing).
        tile: Tile edge in cells (a multiple of 256 keeps the GeoTIFF writes aligned with its blocks).
        work_dir: Folder for the intermediate tiles (default ``out_dir / ".work"``); kept afterwards.
        mapper: Runs the tile tasks (default: one after another here; see :class:`maps.tiled.Mapper`).
        cog: Write Cloud-Optimised GeoTIFFs (else plain tiled GeoTIFFs).
        gdal_cache_mb: GDAL's raster block cache for the run, MB.

    Returns:
        The paths written and the basin's totals.

    Raises:
        LayerError: A layer cannot be used (as in the pipeline).
    """
    params = config.params
    grid = large_grid(config)
    layout = TileLayout(grid.height, grid.width, tile)
    work = Path(work_dir) if work_dir is not None else Path(out_dir) / ".work"
    work.mkdir(parents=True, exist_ok=True)
    run = mapper or serial_map
    size = grid.cell_size
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb):
        dem = read_dem_tiled(config.dem, grid, work / "dem_input.tiles", tile)
        mapped: TiledRaster | None = None
        if config.rivers:
            dem, mapped = _burn_rivers(
                dem, read_vector(config.rivers, "rivers"), grid, params.stream_burn_m, work
            )
        routing = route_tiled(dem, size, work, mapper=run)
        basin = _basin(config, grid, routing.down, routing.accumulation, work, run)
        population = (
            regrid_population_tiled(config.population, grid, work / "population.tiles", tile)
            if config.population
            else None
        )
        zones = (
            read_vector(config.zones, "zones").to_crs(grid.crs)
            if config.zones
            else gpd.GeoDataFrame(geometry=[], crs=grid.crs)
        )
        factor = TiledRaster.create(work / "land_factor.tiles", layout, np.float64)
        rivers = TiledRaster.create(work / "rivers.tiles", layout, np.uint8)
        source = TiledRaster.create(work / "mismanaged_plastic.tiles", layout, np.float64)
        river_km2 = params.river_threshold_km2 * (4 if mapped is not None else 1)
        tiles = list(layout.tiles())

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
                factor,
                rivers,
                source,
            )

        totals = np.zeros(4)
        for _, figures in run(prep_tile, LazyTasks(len(tiles), prep_task)):
            totals += np.array(figures, dtype=np.float64)
        p_land = downstream_product_tiled(routing.down, factor, rivers, work / "p_land.tiles", mapper=run)

        def in_basin(ti: int, tj: int) -> npt.NDArray[np.bool_]:
            valid: npt.NDArray[np.bool_] = np.isfinite(routing.filled.read(ti, tj))
            return valid if basin is None else valid & (basin.read(ti, tj) == 1.0)

        def masked(raster: TiledRaster, scale: float = 1.0) -> Callable[[int, int], FloatArray]:
            def values(ti: int, tj: int) -> FloatArray:
                return np.where(in_basin(ti, tj), raster.read(ti, tj) * scale, np.nan)

            return values

        def leakage(ti: int, tj: int) -> FloatArray:
            return np.where(in_basin(ti, tj), source.read(ti, tj) * p_land.read(ti, tj), np.nan)

        def people(ti: int, tj: int) -> FloatArray:
            if population is None:
                return np.where(in_basin(ti, tj), 0.0, np.nan)
            return masked(population)(ti, tj)

        leak_total = 0.0
        for ti, tj in layout.tiles():
            leak_total += float(np.nansum(leakage(ti, tj)))
        counts = routing.counts
        provenance = make_provenance(
            "maps.hotspots.large",
            parameters={
                **params.flat(),
                "basin": config.name,
                "grid_crs": grid.crs,
                "mode": "large (tiled)",
                "tile": tile,
                "tiles": counts.tiles,
                "fill_solves": counts.fill_solves,
                "flat_solves": counts.flat_solves,
            },
            inputs=config.inputs(),
        )
        layers: list[tuple[str, Callable[[int, int], FloatArray], str, str]] = [
            ("dem", routing.filled.read, "m", "conditioned DEM (plain depression fill, tileable)"),
            ("population", people, "people", "people per cell"),
            ("mismanaged_plastic", masked(source), "kg/yr", "L_src"),
            ("p_land", masked(p_land), "1", "probability of reaching a river"),
            ("leakage_index", leakage, "kg/yr", "plastic entering rivers"),
            (
                "flow_accumulation",
                masked(routing.accumulation, grid.cell_area_m2 / 1e6),
                "km2",
                "upstream area",
            ),
            ("rivers", masked(rivers), "1", "river cells"),
        ]
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rasters = {
            name: _write_raster(
                out / f"{name}.tif", grid, layout, values, provenance, description=text, unit=unit, cog=cog
            )
            for name, values, unit, text in layers
        }
    basin_cells, river_cells, people_total, source_total = totals.tolist()
    summary = {
        "basin_cells": basin_cells,
        "river_cells": river_cells,
        "population": people_total,
        "mismanaged_kg_yr": source_total,
        "leakage_kg_yr": leak_total,
    }
    prov_path = out / "provenance.json"
    with atomic_path(prov_path) as tmp:
        document = {**json.loads(provenance.to_json()), "totals": summary}
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return LargeOutputs(directory=out, rasters=rasters, provenance=prov_path, counts=counts, totals=summary)
