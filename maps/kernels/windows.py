"""The per-window kernels of tileable routing: depression fill, flat distances, D8, local flow graphs.

Each kernel works on one window of the grid (a tile, or the whole grid) given as a *padded* array of
shape ``(h + 2, w + 2)``: the window's cells inside, and around them a one-cell halo holding what the
neighbouring windows currently know. Outside the grid the halo holds NaN. Every stage is the
fixpoint of a rule that looks only at a cell's eight neighbours, so a kernel run on a tile with the
final values of its halo gives exactly what it gives on the whole grid (see
:mod:`plastic_hotspots.maps.large.routing`):

1. **Depression fill** ``F``: the least surface ``>= z`` that drains to the grid edge or to nodata,
   ``F(c) = max(z(c), min over the 8 neighbours n of F(n))``, with nodata and off-grid neighbours
   draining (``-inf``). No epsilon: filled depressions are exactly flat.
2. **Flat distance** ``D``: 0 on cells that have a strictly lower valid neighbour in ``F`` or a nodata
   or off-grid neighbour (outlets); on the other cells (flats) the 8-connected step distance, through
   cells of the same ``F``, to the nearest outlet of that ``F``. -1 on nodata.
3. **D8**: steepest descent on ``F`` (``drop / distance``, edge neighbours ``cell_size`` away, diagonal
   ones ``sqrt(2) x cell_size``; ties N, E, S, W, NE, SE, SW, NW); a flat cell drains to the first
   neighbour in that order with the same ``F`` and ``D`` one less. Cells with neither (outlets on the
   edge or next to nodata) and nodata cells get -1.

The kernels are pure functions of their arguments (no I/O); the two searches run compiled
(:mod:`plastic_hotspots.maps.kernels.compiled`). :func:`plastic_hotspots.maps.science.terrain.condition` runs
them on a whole grid, :mod:`plastic_hotspots.maps.large.routing`
tile by tile.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels.compiled import d8_directions, flat_distances, flood_levels

__all__ = [
    "UNKNOWN_DISTANCE",
    "d8_kernel",
    "fill_kernel",
    "flat_distance_kernel",
    "local_graph",
    "reach_exits",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

UNKNOWN_DISTANCE = int(np.iinfo(np.int32).max)
"""Flat distance of a cell not known yet (its tile or the path to its outlet not solved yet)."""

# N, E, S, W, NE, SE, SW, NW: the order in which D8 breaks ties between equally steep directions.
STEPS: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def _check_padded(padded: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(padded, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 3 or arr.shape[1] < 3:
        raise ValueError(
            f"{name} must be a padded window of shape (h + 2, w + 2) with h, w >= 1, got {arr.shape}"
        )
    return arr


def _shifted(arr: npt.NDArray[Any], dr: int, dc: int) -> npt.NDArray[Any]:
    """The neighbour in direction ``(dr, dc)`` of every inner cell of a padded array."""
    h, w = arr.shape[0] - 2, arr.shape[1] - 2
    return arr[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]


def fill_kernel(padded: npt.ArrayLike, known: npt.ArrayLike | None = None) -> FloatArray:
    """Depression fill of the inner cells of a padded window, given its halo.

    Inner cells hold the DEM (non-finite: nodata). The halo holds the filled elevations of the cells
    around the window: NaN where they drain (off the grid, or nodata), ``+inf`` where they are not
    known yet, else their ``F``. The result is the greatest solution of
    ``F(c) = max(z(c), min over neighbours n of F(n))`` with the halo fixed: for each cell the lowest
    level at which it connects to a draining cell or to a halo cell of ``F`` at most that level.

    It is computed as a bottleneck (minimax) path problem: a path's level is the highest elevation on
    it, and each cell takes the lowest level of its paths to a draining or halo cell. A priority flood
    from those cells (:func:`plastic_hotspots.maps.kernels.compiled.flood_levels`) reaches every cell once, at
    that level; the
    results are the input values themselves, bit for bit.

    Args:
        padded: Shape ``(h + 2, w + 2)``.
        known: Final ``F`` of some inner cells, NaN elsewhere (shape ``(h, w)``), e.g. where a
            previous fill equals ``z``: a filled surface only goes down as halos go down, and never
            below ``z``. Such cells keep their value and act like halo cells.

    Returns:
        ``F`` of the inner cells, shape ``(h, w)``: NaN on nodata, ``+inf`` where the cell reaches no
        draining cell and no known halo cell.

    Raises:
        ValueError: If ``padded`` is not a 2-D array of at least 3 x 3, or ``known`` does not fit it.
    """
    p = _check_padded(padded, "padded")
    rows, cols = p.shape
    inner = np.zeros((rows, cols), dtype=np.bool_)
    inner[1:-1, 1:-1] = True
    valid = inner & np.isfinite(p)
    cost = np.where(np.isnan(p) | (inner & ~valid), -np.inf, p)
    free = valid.copy()
    if known is not None:
        known_arr = np.asarray(known, dtype=np.float64)
        if known_arr.shape != (rows - 2, cols - 2):
            raise ValueError(
                f"known must have the window's shape {(rows - 2, cols - 2)}, got {known_arr.shape}"
            )
        keep = valid[1:-1, 1:-1] & np.isfinite(known_arr)
        free[1:-1, 1:-1] &= ~keep
        cost[1:-1, 1:-1] = np.where(keep, known_arr, cost[1:-1, 1:-1])
    filled_out = np.where(valid, cost, np.nan)
    if free.any():
        np.copyto(filled_out, flood_levels(cost, free), where=free)
    out: FloatArray = filled_out[1:-1, 1:-1]
    return out


def _outlets(pf: FloatArray) -> tuple[BoolArray, BoolArray]:
    """Inner cells that are valid, and those of them that are outlets (a lower or a draining neighbour)."""
    centre = pf[1:-1, 1:-1]
    valid = np.isfinite(centre)
    outlet = np.zeros(centre.shape, dtype=np.bool_)
    for dr, dc in STEPS:
        nb = _shifted(pf, dr, dc)
        outlet |= ~np.isfinite(nb) | (nb < centre)
    return valid, valid & outlet


def flat_distance_kernel(
    padded_filled: npt.ArrayLike, padded_distance: npt.ArrayLike, previous: npt.ArrayLike | None = None
) -> Int32Array:
    """Flat distances ``D`` of the inner cells of a padded window, given the halo's ``F`` and ``D``.

    Args:
        padded_filled: ``F`` of the window and its halo, shape ``(h + 2, w + 2)``; NaN where a cell is
            nodata or off the grid.
        padded_distance: ``D`` of the halo (the inner values are ignored), same shape;
            :data:`UNKNOWN_DISTANCE` where not known yet.
        previous: The window's ``D`` from an earlier halo (shape ``(h, w)``). Halo distances only go
            down, so these are upper bounds reached by real paths: only the cells they improve on
            are searched from.

    Returns:
        int32 ``D`` of the inner cells: 0 on outlets, the step distance to the nearest outlet through
        cells of the same ``F`` (or to a halo cell of that ``F`` plus its ``D``) on flats,
        :data:`UNKNOWN_DISTANCE` on flats with no such path yet, -1 on nodata.

    Raises:
        ValueError: If the arrays are not padded windows of the same shape.
    """
    pf = _check_padded(padded_filled, "padded_filled")
    pd_in = np.asarray(padded_distance)
    if pd_in.shape != pf.shape:
        raise ValueError(
            f"padded_distance must have the shape of padded_filled {pf.shape}, got {pd_in.shape}"
        )
    rows, cols = pf.shape
    valid, outlet = _outlets(pf)
    flat = valid & ~outlet
    dist = np.array(pd_in, dtype=np.int64, order="C")  # a copy, searched in place
    start = np.full(flat.shape, UNKNOWN_DISTANCE, dtype=np.int64)
    if previous is not None:
        before = np.asarray(previous).astype(np.int64)
        if before.shape != flat.shape:
            raise ValueError(f"previous must have the window's shape {flat.shape}, got {before.shape}")
        start = np.where(flat & (before >= 0), np.minimum(before, UNKNOWN_DISTANCE), UNKNOWN_DISTANCE)
    dist[1:-1, 1:-1] = np.where(outlet, 0, start)
    if flat.any():
        eligible = np.zeros((rows, cols), dtype=np.bool_)
        eligible[1:-1, 1:-1] = flat
        flat_distances(dist, pf, eligible, UNKNOWN_DISTANCE)
    out = dist[1:-1, 1:-1]
    out = np.where(valid, np.minimum(out, UNKNOWN_DISTANCE), -1)
    return out.astype(np.int32)


def d8_kernel(
    padded_filled: npt.ArrayLike,
    padded_distance: npt.ArrayLike,
    cell_size: float,
    origin: tuple[int, int],
    grid_cols: int,
) -> IntArray:
    """D8 downstream flat indices (on the whole grid) of the inner cells of a padded window.

    Args:
        padded_filled: Final ``F`` of the window and its halo, NaN on nodata and off the grid.
        padded_distance: Final ``D`` of the window and its halo, same shape.
        cell_size: Cell edge in metres, > 0.
        origin: ``(row, col)`` on the grid of the window's first inner cell.
        grid_cols: Columns of the whole grid (for flat indices).

    Returns:
        int64 ``down`` of the inner cells, shape ``(h, w)``; -1 where flow leaves the grid, enters
        nodata, or on nodata.

    Raises:
        ValueError: If the arrays do not match, ``cell_size`` is not > 0, or a flat cell has no
            neighbour one step nearer its outlet (``D`` is not final).
    """
    pf = _check_padded(padded_filled, "padded_filled")
    pdist = np.asarray(padded_distance).astype(np.int64)
    if pdist.shape != pf.shape:
        raise ValueError(
            f"padded_distance must have the shape of padded_filled {pf.shape}, got {pdist.shape}"
        )
    size = float(cell_size)
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"cell_size must be a finite number of metres > 0, got {cell_size!r}")
    down, bad = d8_directions(pf, pdist, size, origin, grid_cols)
    if bad >= 0:
        r, c = divmod(bad, pf.shape[1] - 2)
        raise ValueError(
            f"flat cell ({origin[0] + r}, {origin[1] + c}) has no neighbour one step nearer its outlet: "
            "the flat distances are not final"
        )
    return down


def local_graph(
    down: npt.ArrayLike, window: tuple[int, int, int, int], grid_cols: int
) -> tuple[IntArray, BoolArray]:
    """A tile's part of the flow graph, in the tile's own flat indices.

    Args:
        down: The tile's ``down`` (flat indices on the whole grid), shape ``(h, w)``.
        window: ``(r0, r1, c0, c1)`` of the tile on the grid.
        grid_cols: Columns of the whole grid.

    Returns:
        ``(local_down, exits)``: ``local_down`` (length ``h * w``) is the downstream cell's index in
        the tile, -1 where flow leaves the tile or the grid; ``exits`` marks the cells whose flow
        goes on into another tile.
    """
    r0, r1, c0, c1 = window
    g = np.asarray(down, dtype=np.int64).ravel()
    gr, gc = np.divmod(np.maximum(g, 0), grid_cols)
    inside = (g >= 0) & (gr >= r0) & (gr < r1) & (gc >= c0) & (gc < c1)
    local = np.where(inside, (gr - r0) * (c1 - c0) + (gc - c0), -1).astype(np.int64)
    return local, (g >= 0) & ~inside


def reach_exits(
    local_down: IntArray, levels: list[IntArray], exits: BoolArray, factor: FloatArray, stop: BoolArray
) -> tuple[FloatArray, IntArray]:
    """Products of ``factor`` along each cell's path inside a tile, up to a stop cell or the tile's edge.

    ``q[c] = 1`` on stop cells; else ``factor[c] * q[next]`` inside the tile; on an exit cell (flow goes
    on into another tile) ``factor[c]`` times what the other tile gives; 0 where flow leaves the grid.
    So the whole-grid :func:`plastic_hotspots.maps.science.terrain.downstream_product` is ``q[c] *
    p[down[exit[c]]]`` where
    ``exit[c] >= 0``, and ``q[c]`` otherwise.

    Args:
        local_down: The tile's local ``down`` (see :func:`local_graph`).
        levels: ``plastic_hotspots.maps.science.terrain.flow_levels(local_down)``.
        exits: Exit cells (see :func:`local_graph`).
        factor: Per-cell factor, length ``h * w``.
        stop: Stop cells, length ``h * w``.

    Returns:
        ``(q, exit)``: ``exit[c]`` is the local index of the exit cell the path reaches before any
        stop cell, -1 if it meets a stop cell or leaves the grid first.
    """
    n = local_down.size
    off, onward = n, n + 1  # extra slots: flow off the grid (0), flow into another tile (1)
    target = np.where(local_down >= 0, local_down, np.where(exits, onward, off))
    f_on = np.where((local_down >= 0) | exits, factor, 0.0)
    q = np.zeros(n + 2, dtype=np.float64)
    q[onward] = 1.0
    first = np.full(n + 2, -1, dtype=np.int64)
    cells = np.arange(n, dtype=np.int64)
    for level in reversed(levels):
        q[level] = np.where(stop[level], 1.0, f_on[level] * q[target[level]])
        first[level] = np.where(stop[level], -1, np.where(exits[level], cells[level], first[target[level]]))
    return q[:n], first[:n]
