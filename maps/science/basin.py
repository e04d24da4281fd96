"""The steps around the model that both run modes share: grid, outlet, basin checks, rivers, barriers.

The whole-grid run (:mod:`plastic_hotspots.maps.wholegrid.run`) holds its rasters in memory, the large
mode (:mod:`plastic_hotspots.maps.large.run`) keeps them in tiles on disk. Each step here takes what
differs as an argument (most often a window reader, ``read(r0, r1, c0, c1)``, that clips to the
grid), so the two modes make the same choices with the same messages.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.config import BasinConfig
from plastic_hotspots.maps.errors import LayerError, LayerWarning, ModelError
from plastic_hotspots.maps.grid import grid_for_bounds, lonlat_to_grid, rowcol
from plastic_hotspots.maps.inputs.rasters import dem_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import Barriers
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science import terrain
from plastic_hotspots.provenance import file_sha256, make_provenance
from plastic_hotspots.records import GridSpec, Provenance, Scalar

WindowReader = Callable[[int, int, int, int], npt.NDArray[Any]]
"""``read(r0, r1, c0, c1)``: rows ``r0:r1`` and columns ``c0:c1`` of a raster, clipped to the grid."""

MIN_BASIN_CELLS = 4
"""A basin of fewer cells than this is an outlet placed off the river, not a basin."""
OUTLET_SNAP_CELLS = 5
"""The outlet moves to the largest flow within this many cells of where it is given."""
BARRIER_SNAP_CELLS = 3
"""A barrier sits on the nearest river cell within this many cells, or on none."""
MAPPED_RIVER_THRESHOLD_FACTOR = 4
"""Where rivers are mapped, derived rivers start at this multiple of the threshold (mapped ones lead)."""
MASS_BALANCE_TOLERANCE = 1e-3
"""Largest share of the plastic entering rivers that may be unaccounted for (retained + exported)."""
HOTSPOT_TOOL = "maps.hotspots"
"""The ``tool`` of a hotspot run's provenance (the large mode appends ``.large``)."""


def basin_grid(config: BasinConfig) -> GridSpec:
    """The projected grid of a basin config: its area of interest, or the DEM's extent (all its tiles)."""
    bounds = config.area_of_interest or dem_bounds_lonlat(config.dem)
    return grid_for_bounds(bounds, config.params.cell_size_m, config.crs)


WHOLE_GRID_BYTES_PER_CELL = 150
"""Peak memory of a whole-grid run per cell (docs/scale-out.md: 9.3 GiB for 6.4 x 10^7 cells)."""
LARGE_MODE_DISK_BYTES_PER_CELL = 170
"""Scratch disk of the large mode's work folder per cell (docs/scale-out.md)."""


def check_grid_fits(
    grid: GridSpec, *, tile: int | None, work_dir: Path, available: int | None, free_disk: int | None
) -> None:
    """Refuse, before any work, a grid whose run cannot fit: memory for the whole grid, disk when tiled.

    The estimate is cells x bytes per cell (:data:`WHOLE_GRID_BYTES_PER_CELL`,
    :data:`LARGE_MODE_DISK_BYTES_PER_CELL`) against the memory available now (``available``) or the free
    disk under the work folder (``free_disk``); None skips a check.

    Raises:
        ConfigError: The run would run out of memory (the hint gives ``--tile`` and a cell size that
            fits) or of disk.
    """
    from plastic_hotspots.errors import ConfigError
    from plastic_hotspots.memory import format_bytes

    cells = grid.width * grid.height
    size = f"{cells:,} cells ({grid.width:,} x {grid.height:,} cells of {grid.cell_size:g} m)"
    disk = cells * LARGE_MODE_DISK_BYTES_PER_CELL

    def coarser(budget: int | None, per_cell: int) -> str:
        if not budget:
            return "coarser cells (a larger cell_size_m)"
        fits = grid.cell_size * math.sqrt(cells * per_cell / budget)
        nice = next((c for c in (1, 2, 5, 10, 20, 25, 30, 50, 100, 200, 250, 500, 1000) if c >= fits), None)
        return f"coarser cells (cell_size_m: {nice if nice else math.ceil(fits)} fits)"

    if tile is None:
        need = cells * WHOLE_GRID_BYTES_PER_CELL
        if available is not None and need > available:
            coarse = coarser(available, WHOLE_GRID_BYTES_PER_CELL)
            if free_disk is None or disk <= free_disk:
                hint = (
                    "run it tile by tile with --tile 1024 (under 1 GiB of memory; about "
                    f"{format_bytes(disk)} of scratch disk in its work folder), or use {coarse}"
                )
            else:
                hint = (
                    f"use {coarse}; --tile 1024 would need about {format_bytes(disk)} of scratch disk, "
                    f"{format_bytes(free_disk)} is free there (--work-dir on a larger disk)"
                )
            raise ConfigError(
                f"the grid of {size} needs about {format_bytes(need)} of memory in one piece "
                f"({WHOLE_GRID_BYTES_PER_CELL} bytes per cell); {format_bytes(available)} is available",
                hint=hint,
            )
        return
    if free_disk is not None and disk > free_disk:
        raise ConfigError(
            f"the grid of {size} needs about {format_bytes(disk)} of scratch disk in the work folder "
            f"{work_dir} ({LARGE_MODE_DISK_BYTES_PER_CELL} bytes per cell); "
            f"{format_bytes(free_disk)} is free",
            hint="give --work-dir on a larger disk, or use "
            f"{coarser(free_disk, LARGE_MODE_DISK_BYTES_PER_CELL)}",
        )


def river_threshold_km2(params: HotspotParams, mapped_rivers: bool) -> float:
    """Upstream area (km2) from which a cell is a river: raised where mapped rivers are given."""
    return params.river_threshold_km2 * (MAPPED_RIVER_THRESHOLD_FACTOR if mapped_rivers else 1)


def array_window(values: npt.NDArray[Any]) -> WindowReader:
    """A :data:`WindowReader` over a raster held in memory."""

    def read(r0: int, r1: int, c0: int, c1: int) -> npt.NDArray[Any]:
        return values[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)]

    return read


def outlet_cell(outlet: tuple[float, float], grid: GridSpec, read_accumulation: WindowReader) -> int:
    """Flat index of an outlet (lon, lat), moved to the largest flow within :data:`OUTLET_SNAP_CELLS`.

    Only cells with data can be picked (their upstream area counts themselves, so it is at least 1;
    nodata, and the open water made nodata at the grid's edge, have none): an outlet given a little
    offshore, within :data:`OUTLET_SNAP_CELLS` of the coast, snaps to the river mouth there (the
    coast's cell of largest flow), never into the sea.

    Raises:
        LayerError: The outlet lies outside the grid.
    """
    ox, oy = lonlat_to_grid(grid, np.array([outlet[0]]), np.array([outlet[1]]))
    rows, cols, inside = rowcol(grid, ox, oy)
    if not bool(inside[0]):
        raise LayerError(
            f"the outlet {outlet} lies outside the grid",
            hint="give the outlet as [lon, lat] inside the DEM's extent",
        )
    r, c, k = int(rows[0]), int(cols[0]), OUTLET_SNAP_CELLS
    r0, c0 = max(r - k, 0), max(c - k, 0)
    window = np.asarray(read_accumulation(r - k, r + k + 1, c - k, c + k + 1), dtype=np.float64)
    window = np.where(window >= 1, window, np.nan)  # cells without data cannot be the outlet
    sr, sc = terrain.snap_to_max(window, r - r0, c - c0, k)
    return (sr + r0) * grid.width + (sc + c0)


def check_basin_size(cells: int, outlet: tuple[float, float]) -> None:
    """Refuse a basin of fewer than :data:`MIN_BASIN_CELLS` cells (an outlet off the river).

    Raises:
        LayerError: The basin is empty.
    """
    if cells < MIN_BASIN_CELLS:
        raise LayerError(
            f"only {cells} cells drain to the outlet {list(outlet)}: the basin is empty",
            hint="put the outlet on the main river (it is snapped to the largest flow within "
            f"{OUTLET_SNAP_CELLS} cells), or leave it out to model the whole DEM",
        )


def snap_barriers(
    barriers: Barriers, grid: GridSpec, read_rivers: WindowReader, radius: int = BARRIER_SNAP_CELLS
) -> list[int]:
    """Flat river-cell index of each barrier (nearest river cell within ``radius`` cells), -1 if none.

    Only the window around each barrier is read. Among equally near river cells the first in
    row-major order wins.
    """
    rows, cols, inside = rowcol(grid, barriers.x, barriers.y)
    cells: list[int] = []
    for r, c, ok in zip(rows.tolist(), cols.tolist(), inside.tolist(), strict=True):
        if not ok:
            cells.append(-1)
            continue
        r0, c0 = max(0, r - radius), max(0, c - radius)
        rr, cc = np.nonzero(read_rivers(r0, r + radius + 1, c0, c + radius + 1).astype(np.bool_))
        if rr.size == 0:
            cells.append(-1)
            continue
        d = (rr + r0 - r) ** 2 + (cc + c0 - c) ** 2
        k = int(np.argmin(d))
        cells.append(int((rr[k] + r0) * grid.width + cc[k] + c0))
    return cells


def warn_unplaced_barriers(
    barriers: Barriers, grid: GridSpec, cells: list[int], radius: int = BARRIER_SNAP_CELLS
) -> None:
    """Warn, naming them, of barriers :func:`snap_barriers` placed on no river (they hold nothing back).

    A barrier outside the grid (e.g. 2,000 km away: a wrong CRS or swapped coordinates) and one with no
    river cell within ``radius`` cells are told apart.
    """
    _, _, inside = rowcol(grid, barriers.x, barriers.y)
    outside = [n for n, c, ok in zip(barriers.name, cells, inside.tolist(), strict=True) if c < 0 and not ok]
    off = [n for n, c, ok in zip(barriers.name, cells, inside.tolist(), strict=True) if c < 0 and ok]
    if not outside and not off:
        return

    def names(which: list[str]) -> str:
        return ", ".join(which[:10]) + (f" and {len(which) - 10} more" if len(which) > 10 else "")

    parts = []
    if outside:
        parts.append(f"outside the basin grid: {names(outside)}")
    if off:
        parts.append(f"with no river within {radius * grid.cell_size:g} m: {names(off)}")
    warnings.warn(
        f"{len(outside) + len(off)} of {len(cells)} barriers hold nothing back and are left out, "
        f"{'; '.join(parts)}. Check their coordinates and CRS, or put them on the river",
        LayerWarning,
        stacklevel=2,
    )


def barrier_kinds(barriers: Barriers | None, cells: list[int]) -> dict[int, str]:
    """The kind of barrier on each snapped river cell (for the accumulation hotspots' drivers)."""
    if barriers is None:
        return {}
    return {cell: kind for cell, kind in zip(cells, barriers.kind, strict=True) if cell >= 0}


def driver_reference(
    population: float | None, poor_collection: float | None, near_river: float | None, observed_litter: float
) -> dict[str, float]:
    """The area's typical value of each leakage driver (medians over populated cells; 0 if none).

    ``observed_litter`` is the observed extra source per basin cell (kg/yr), at least 1e-9.
    """
    return {
        "population": population if population is not None else 0.0,
        "poor collection": poor_collection if poor_collection is not None else 0.0,
        "near a river": near_river if near_river is not None else 0.0,
        "observed litter": max(observed_litter, 1e-9),
    }


def run_provenance(
    config: BasinConfig, grid: GridSpec, figures: Mapping[str, Scalar], *, tool_suffix: str = ""
) -> Provenance:
    """Provenance of a hotspot run: every parameter, the basin, its grid, the run's figures, the inputs.

    A DEM given as tiles lists every tile among the inputs, and each tile's SHA-256 as the parameter
    ``dem_tile_sha256.<file name>``, so that a run says which tiles of a re-published set it read.
    """
    tiles: dict[str, Scalar] = (
        {f"dem_tile_sha256.{path.name}": file_sha256(path) for path in config.dem}
        if isinstance(config.dem, tuple)
        else {}
    )
    return make_provenance(
        f"{HOTSPOT_TOOL}.{tool_suffix}" if tool_suffix else HOTSPOT_TOOL,
        parameters={**config.params.flat(), "basin": config.name, "grid_crs": grid.crs, **tiles, **figures},
        inputs=config.inputs(),
    )


def check_mass_balance(leakage_kg_yr: float, retained_kg_yr: float, exported_kg_yr: float) -> float:
    """Check that what enters the rivers is retained or exported; return the unaccounted share.

    Raises:
        ModelError: More than :data:`MASS_BALANCE_TOLERANCE` of the leakage is unaccounted for (or a
            figure is not a finite number).
    """
    gap = leakage_kg_yr - retained_kg_yr - exported_kg_yr
    share = abs(gap) / leakage_kg_yr if leakage_kg_yr > 0 else abs(gap)
    if not share <= MASS_BALANCE_TOLERANCE:
        raise ModelError(
            f"the mass balance does not close: {leakage_kg_yr:,.0f} kg/yr enter the rivers, "
            f"{retained_kg_yr:,.0f} are retained and {exported_kg_yr:,.0f} exported "
            f"({gap:,.0f} kg/yr, {share:.2%}, unaccounted for)",
            hint="this is a fault of the model, not of the inputs: please report it with the basin config",
        )
    return share
