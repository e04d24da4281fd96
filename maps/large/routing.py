"""Flow routing that gives the same answer on the whole grid and tile by tile, for rasters larger than memory.

The hotspot model's routing (:func:`plastic_hotspots.maps.science.terrain.condition`, used by
:func:`plastic_hotspots.maps.science.model.build_flow_graph`) is made of stages that are each the fixpoint of
a rule on a cell
and its eight neighbours, with no order in it (see :mod:`plastic_hotspots.maps.kernels.windows`): plain
depression fill
``F``, flat distances ``D``, D8 on ``F`` with flats drained towards their nearest outlet, and flow
accumulation. So it can be computed tile by tile and give the same answer.

* :func:`route_untiled` computes them on a grid in memory
(:func:`plastic_hotspots.maps.science.terrain.condition`).
* :func:`route_tiled` computes them on a grid stored tile by tile on disk
  (:class:`~plastic_hotspots.maps.large.store.TiledRaster`), holding a few tiles and the tiles' edges
  (:class:`~plastic_hotspots.maps.large.store.Seams`, ``4 x rows x cols / tile`` values) in memory:

  1. ``F``: every tile is filled with its halo (the neighbours' edges as known so far, ``+inf`` where
     unknown); a tile whose halo went down since is filled again, until no tile's halo changes.
     Starting from ``+inf`` and only going down, this converges to the whole-grid fixpoint. A tile
     is filled again only if its stored edges are no longer a fixpoint with the new halo.
  2. ``D``: the same relaxation, with the halo's distances (min-plus, also order-free).
  3. D8: one pass; a cell needs only its neighbours' final ``F`` and ``D``.
  4. Accumulation (:func:`~plastic_hotspots.maps.large.sweeps.accumulate_tiled`): two passes over the tiles
  around a
     small in-memory graph of the tiles' ring cells. Cell counts are integers in float64: the
     accumulation is bit-identical to the whole-grid one.

  :func:`~plastic_hotspots.maps.large.sweeps.downstream_product_tiled` does the same for products along flow
  paths
  (the probability of reaching a river, :func:`plastic_hotspots.maps.science.terrain.downstream_product`).

Tiles are handed to a :class:`~plastic_hotspots.maps.large.mapper.Mapper`: by default one after another in
this
process, in raster order and back; a Dask cluster's ``map_unordered`` (:mod:`plastic_hotspots.cluster`)
runs them on workers that see the same work directory, one batch per colour of a four-colouring of the
tiles (row and column parity: tiles of one colour are never neighbours).

Why the relaxation ends at the whole-grid answer: each stage's rule is monotone, and every tile
solve returns the tile's exact fixpoint given its halo. Starting above the answer (``+inf``) and never
going below it (a halo at or above the answer gives a tile at or above it), the values only go down
and are drawn from a finite set (the DEM's values; whole step counts), so the relaxation stops, at a
fixpoint of every tile at once: the whole-grid fixpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from plastic_hotspots.maps.kernels.windows import (
    STEPS,
    UNKNOWN_DISTANCE,
    d8_kernel,
    fill_kernel,
    flat_distance_kernel,
)
from plastic_hotspots.maps.large.mapper import LazyTasks, Mapper, relax_tiles, serial_map
from plastic_hotspots.maps.large.store import Border, Seams, TiledRaster
from plastic_hotspots.maps.large.sweeps import accumulate_tiled, downstream_product_tiled
from plastic_hotspots.maps.science import terrain

__all__ = [
    "Mapper",
    "Routing",
    "TiledRouting",
    "accumulate_tiled",
    "downstream_product_tiled",
    "route_tiled",
    "route_untiled",
    "serial_map",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Routing:
    """The tileable routing of one grid, in memory.

    Attributes:
        filled: ``F``, the depression-filled DEM (no epsilon), NaN on nodata; ``(rows, cols)``.
        flat_distance: ``D``, int32: 0 off flats, steps to the flat's outlet on flats, -1 on nodata.
        down: Flat index of each cell's D8 downstream cell, -1 where flow leaves the grid or enters
            nodata (and on nodata); length ``rows * cols``.
        accumulation: Upstream area in cells, the cell included (0 on nodata); ``(rows, cols)``.
    """

    filled: FloatArray
    flat_distance: Int32Array
    down: IntArray
    accumulation: FloatArray


@dataclass(frozen=True, slots=True)
class TileCounts:
    """How much work the relaxation took: tile solves per stage (each tile is solved at least once)."""

    tiles: int
    fill_solves: int
    flat_solves: int


@dataclass(frozen=True, slots=True, eq=False)
class TiledRouting:
    """The tileable routing of a grid stored tile by tile (see :class:`Routing` for the meanings).

    Attributes:
        dem: The input DEM.
        filled: ``F``.
        flat_distance: ``D``.
        down: ``down`` as a raster of flat indices (int64).
        accumulation: Upstream area in cells.
        filled_seams: The edges of every tile of ``F`` (for later stages that need a halo of ``F``).
        counts: Tile solves per stage.
    """

    dem: TiledRaster
    filled: TiledRaster
    flat_distance: TiledRaster
    down: TiledRaster
    accumulation: TiledRaster
    filled_seams: Seams = field(repr=False)
    counts: TileCounts

    def load(self) -> Routing:
        """The whole routing in memory (for grids that fit: tests, checks)."""
        return Routing(
            filled=self.filled.to_array(),
            flat_distance=self.flat_distance.to_array(),
            down=self.down.to_array().ravel(),
            accumulation=self.accumulation.to_array(),
        )


# --------------------------------------------------------------------------------------------------
# In memory
# --------------------------------------------------------------------------------------------------


def route_untiled(dem: npt.ArrayLike, cell_size: float) -> Routing:
    """The tileable routing of a DEM held in memory (see the module docstring).

    Args:
        dem: Elevations in metres, ``(rows, cols)``; non-finite values are nodata.
        cell_size: Cell edge in metres, > 0.

    Returns:
        ``F``, ``D``, ``down`` and the accumulation in cells.

    Raises:
        ValueError: If ``dem`` is not a non-empty 2-D array or ``cell_size`` is not > 0.
    """
    z = np.asarray(dem, dtype=np.float64)
    if z.ndim != 2 or z.size == 0:
        raise ValueError(f"dem must be a non-empty 2-D raster (rows, cols), got shape {z.shape}")
    conditioned = terrain.condition(z, cell_size)
    down = conditioned.down
    valid = np.isfinite(z).ravel().astype(np.float64)
    accumulation = terrain.accumulate(down, terrain.flow_levels(down), valid).reshape(z.shape)
    return Routing(
        filled=conditioned.filled,
        flat_distance=conditioned.flat_distance,
        down=down,
        accumulation=accumulation,
    )


# --------------------------------------------------------------------------------------------------
# Tile tasks (module-level and picklable: they may run on Dask workers)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FillTask:
    """Fill one tile of ``dem`` into ``out`` with the given halo of ``F``."""

    dem: TiledRaster
    out: TiledRaster
    ti: int
    tj: int
    halo: Border
    floor: float | None = None


def fill_tile(task: FillTask) -> tuple[Border, Border]:
    """Run a :class:`FillTask`; returns the edges of the tile's DEM and of its ``F``.

    A tile filled again (``floor`` given: its halo went down, to no lower than ``floor`` where it
    matters) starts from its previous ``F``; only cells that can change enter the computation (see
    :func:`_changeable`).
    """
    z = task.dem.read(task.ti, task.tj).astype(np.float64)
    z = np.where(np.isfinite(z), z, np.nan)
    padded = task.halo.pad(z)
    known = None
    if task.floor is not None:
        before = task.out.read(task.ti, task.tj)
        known = np.where(_changeable(before, padded, task.floor), np.nan, before)
    filled = fill_kernel(padded, known)
    task.out.write(task.ti, task.tj, filled)
    return Border.of(z), Border.of(filled)


def _changeable(before: FloatArray, padded: FloatArray, floor: float) -> BoolArray:
    """Cells whose ``F`` can go down now that the halo in ``padded`` went down.

    A cell goes down only to a new level of at least ``floor``, and only along a path of cells that
    all go down, entering at an edge cell ``c`` next to a halo cell ``n`` with
    ``F(c) > max(z(c), F(n))``. So: the 8-connected groups of cells with ``F > max(z, floor)`` that
    hold such an edge cell.
    """
    z = padded[1:-1, 1:-1]
    could = np.isfinite(z) & (before > np.maximum(z, floor))
    if not could.any():
        return could
    pb = padded.copy()
    pb[1:-1, 1:-1] = before
    halo = _ring_mask(pb.shape)
    entry = np.zeros(z.shape, dtype=np.bool_)
    for dr, dc in STEPS:
        nb = _shift(pb, dr, dc)
        entry |= _shift(halo, dr, dc) & (before > np.maximum(z, np.where(np.isnan(nb), -np.inf, nb)))
    labels, _ = ndimage.label(could, structure=np.ones((3, 3), dtype=np.int32))
    hit = np.unique(labels[entry & could])
    return np.isin(labels, hit[hit > 0])


@dataclass(frozen=True, slots=True, eq=False)
class FlatTask:
    """Flat distances of one tile of ``filled`` into ``out``, with the halos of ``F`` and ``D``."""

    filled: TiledRaster
    out: TiledRaster
    ti: int
    tj: int
    filled_halo: Border
    distance_halo: Border
    again: bool = False


def flat_tile(task: FlatTask) -> Border:
    """Run a :class:`FlatTask`; returns the edges of the tile's ``D``.

    A tile solved ``again`` starts from its previous ``D`` and searches only from what got nearer.
    """
    f = task.filled.read(task.ti, task.tj)
    pf = task.filled_halo.pad(f)
    pd = task.distance_halo.pad(np.zeros(f.shape, dtype=np.int64))
    previous = task.out.read(task.ti, task.tj) if task.again else None
    distance = flat_distance_kernel(pf, pd, previous)
    task.out.write(task.ti, task.tj, distance)
    return Border.of(distance)


@dataclass(frozen=True, slots=True, eq=False)
class D8Task:
    """D8 of one tile into ``out`` from its final ``F`` and ``D`` and their halos."""

    filled: TiledRaster
    distance: TiledRaster
    out: TiledRaster
    ti: int
    tj: int
    cell_size: float
    filled_halo: Border
    distance_halo: Border


def d8_tile(task: D8Task) -> None:
    """Run a :class:`D8Task`."""
    lay = task.out.layout
    r0, _, c0, _ = lay.window(task.ti, task.tj)
    pf = task.filled_halo.pad(task.filled.read(task.ti, task.tj))
    pd = task.distance_halo.pad(task.distance.read(task.ti, task.tj).astype(np.int64))
    task.out.write(task.ti, task.tj, d8_kernel(pf, pd, task.cell_size, (r0, c0), lay.cols))


def _ring_mask(shape: tuple[int, ...]) -> BoolArray:
    mask = np.zeros(shape, dtype=np.bool_)
    mask[0, :] = mask[-1, :] = True
    mask[:, 0] = mask[:, -1] = True
    return mask


def _shift(arr: npt.NDArray[Any], dr: int, dc: int) -> npt.NDArray[Any]:
    h, w = arr.shape[0] - 2, arr.shape[1] - 2
    return arr[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]


def _fill_check(filled: Seams, dem: Seams, ti: int, tj: int) -> float | None:
    """None if a solved tile's ``F`` is still the fixpoint with its neighbours' current edges, else a floor.

    Halos only go down. The tile's ``F`` stays the fixpoint unless some edge cell ``c`` next to a halo
    cell ``n`` now has ``F(c) > max(z(c), F(n))``; the lowest such ``F(n)`` is a floor: no cell of the
    tile can go below it, or below its old ``F`` (see :func:`fill_tile`).
    """
    fp = filled.padded(ti, tj, np.nan)
    zp = dem.padded(ti, tj, np.nan)
    halo = _ring_mask(fp.shape)
    fc, zc = fp[1:-1, 1:-1], zp[1:-1, 1:-1]
    floor = np.inf
    for dr, dc in STEPS:
        nb = np.where(np.isnan(_shift(fp, dr, dc)), -np.inf, _shift(fp, dr, dc))
        bad = _shift(halo, dr, dc) & np.isfinite(zc) & (fc > np.maximum(zc, nb))
        if bad.any():
            floor = min(floor, float(nb[bad].min()))
    return None if floor == np.inf else floor


def _flat_check(filled: Seams, distance: Seams, ti: int, tj: int) -> float | None:
    """None if a solved tile's ``D`` is still the fixpoint (no edge cell 2+ steps beyond a halo cell)."""
    fp = filled.padded(ti, tj, np.nan)
    dp = distance.padded(ti, tj, UNKNOWN_DISTANCE).astype(np.int64)
    halo = _ring_mask(fp.shape)
    fc, dc_ = fp[1:-1, 1:-1], dp[1:-1, 1:-1]
    for dr, dc in STEPS:
        nf, nd = _shift(fp, dr, dc), _shift(dp, dr, dc)
        bad = _shift(halo, dr, dc) & np.isfinite(fc) & (nf == fc) & (nd < UNKNOWN_DISTANCE) & (dc_ > nd + 1)
        if np.any(bad):
            return 0.0
    return None


def route_tiled(
    dem: TiledRaster | npt.ArrayLike,
    cell_size: float,
    work_dir: Path,
    *,
    tile: int = 1024,
    mapper: Mapper | None = None,
) -> TiledRouting:
    """The tileable routing of a DEM, tile by tile (see the module docstring); equal to :func:`route_untiled`.

    Args:
        dem: The DEM as a tiled raster, or an array (written to ``work_dir`` in tiles of ``tile``).
            Non-finite values are nodata.
        cell_size: Cell edge in metres, > 0.
        work_dir: Folder for the tiled outputs (``filled``, ``flat_distance``, ``down``,
            ``accumulation``, as ``.tiles`` files); created if missing.
        tile: Tile edge in cells when ``dem`` is an array (a tiled raster keeps its own).
        mapper: Runs the tile tasks (default :func:`serial_map`); every task reads and writes files
            under ``work_dir``, so workers must see it at the same path.

    Returns:
        The tiled rasters, the tiles' edges of ``F`` and the work done.

    Raises:
        ValueError: If ``cell_size`` is not > 0 or the DEM is not 2-D.
    """
    size = float(cell_size)
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"cell_size must be a finite number of metres > 0, got {cell_size!r}")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    source = dem if isinstance(dem, TiledRaster) else TiledRaster.from_array(work / "dem.tiles", dem, tile)
    lay = source.layout
    run = mapper or serial_map

    filled = TiledRaster.create(work / "filled.tiles", lay, np.float64)
    f_seams = Seams(lay, np.float64, np.inf)
    z_seams = Seams(lay, np.float64, np.nan)

    def store_fill(ti: int, tj: int, result: tuple[Border, Border]) -> bool:
        z_seams.store(ti, tj, result[0])
        return f_seams.store(ti, tj, result[1])

    fill_solves = relax_tiles(
        lay,
        run,
        fill_tile,
        lambda ti, tj, floor: FillTask(source, filled, ti, tj, f_seams.halo(ti, tj, np.nan), floor),
        lambda ti, tj: _fill_check(f_seams, z_seams, ti, tj),
        store_fill,
    )

    distance = TiledRaster.create(work / "flat_distance.tiles", lay, np.int32)
    d_seams = Seams(lay, np.int32, UNKNOWN_DISTANCE)
    flat_solves = relax_tiles(
        lay,
        run,
        flat_tile,
        lambda ti, tj, hint: FlatTask(
            filled,
            distance,
            ti,
            tj,
            f_seams.halo(ti, tj, np.nan),
            d_seams.halo(ti, tj, UNKNOWN_DISTANCE),
            again=hint is not None,
        ),
        lambda ti, tj: _flat_check(f_seams, d_seams, ti, tj),
        d_seams.store,
    )

    down = TiledRaster.create(work / "down.tiles", lay, np.int64)
    tiles = list(lay.tiles())

    def d8_task(i: int) -> D8Task:
        ti, tj = tiles[i]
        return D8Task(
            filled,
            distance,
            down,
            ti,
            tj,
            size,
            f_seams.halo(ti, tj, np.nan),
            d_seams.halo(ti, tj, UNKNOWN_DISTANCE),
        )

    for _ in run(d8_tile, LazyTasks(len(tiles), d8_task)):
        pass

    accumulation = accumulate_tiled(down, source, work / "accumulation.tiles", count_valid=True, mapper=run)
    return TiledRouting(
        dem=source,
        filled=filled,
        flat_distance=distance,
        down=down,
        accumulation=accumulation,
        filled_seams=f_seams,
        counts=TileCounts(
            tiles=lay.tile_rows * lay.tile_cols, fill_solves=fill_solves, flat_solves=flat_solves
        ),
    )
