"""The per-window kernels of tileable routing: depression fill, flat distances, D8, local flow graphs.

Each kernel works on one window of the grid (a tile, or the whole grid) given as a *padded* array of
shape ``(h + 2, w + 2)``: the window's cells inside, and around them a one-cell halo holding what the
neighbouring windows currently know. Outside the grid the halo holds NaN. Every stage is the
fixpoint of a rule that looks only at a cell's eight neighbours, so a kernel run on a tile with the
final values of its halo gives exactly what it gives on the whole grid (see :mod:`maps.tiled`):

1. **Depression fill** ``F``: the least surface ``>= z`` that drains to the grid edge or to nodata,
   ``F(c) = max(z(c), min over the 8 neighbours n of F(n))``, with nodata and off-grid neighbours
   draining (``-inf``). No epsilon: filled depressions are exactly flat.
2. **Flat distance** ``D``: 0 on cells that have a strictly lower valid neighbour in ``F`` or a nodata
   or off-grid neighbour (outlets); on the other cells (flats) the 8-connected step distance, through
   cells of the same ``F``, to the nearest outlet of that ``F``. -1 on nodata.
3. **D8**: steepest descent on ``F`` as :func:`maps.terrain.d8_downstream` (``drop / distance``, ties
   N, E, S, W, NE, SE, SW, NW); a flat cell drains to the first neighbour in that order with the same
   ``F`` and ``D`` one less. Cells with neither (outlets on the edge or next to nodata) and nodata
   cells get -1.

The kernels are pure numpy/scipy functions of their arguments (no I/O).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse import csgraph

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

SQRT2 = math.sqrt(2.0)
UNKNOWN_DISTANCE = int(np.iinfo(np.int32).max)
"""Flat distance of a cell not known yet (its tile or the path to its outlet not solved yet)."""

# N, E, S, W, NE, SE, SW, NW: the tie order of maps.terrain.d8_downstream.
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

    It is computed as a bottleneck (minimax) path problem: cells are nodes, neighbours are joined by
    an edge weighted by the higher of their elevations, halo and nodata cells are joined to one sink.
    The bottleneck from every cell to the sink lies on a minimum spanning tree (scipy's); it is read
    off the tree by pointer jumping (``log2(depth)`` vectorised rounds). Weights are the ranks of the
    elevations, so the results are the input values themselves, bit for bit.

    Args:
        padded: Shape ``(h + 2, w + 2)``.
        known: Final ``F`` of some inner cells, NaN elsewhere (shape ``(h, w)``), e.g. where a
            previous fill equals ``z``: a filled surface only goes down as halos go down, and never
            below ``z``. Such cells keep their value and join the sink like halo cells; only the
            other cells and their neighbours enter the graph.

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
        filled_out[free] = _bottleneck(cost, free)
    out: FloatArray = filled_out[1:-1, 1:-1]
    return out


def _bottleneck(cost: FloatArray, free: BoolArray) -> FloatArray:
    """Minimax level from each free cell to the sink (see :func:`fill_kernel`), in ``free``'s order.

    Non-free cells with a cost below ``+inf`` join the sink at their cost; only free cells and their
    neighbours are nodes.
    """
    rows, cols = cost.shape
    # Nodes: the free cells and their neighbours, numbered in row-major order.
    node = free.copy()
    node[:-1, :] |= free[1:, :]
    node[1:, :] |= free[:-1, :]
    grown = node.copy()
    node[:, :-1] |= grown[:, 1:]
    node[:, 1:] |= grown[:, :-1]
    del grown
    n = int(node.sum())
    sink = n
    # int32 node numbers (a window has far fewer than 2**31 cells): the graph is most of the memory.
    idx = np.full((rows, cols), -1, dtype=np.int32)
    idx[node] = np.arange(n, dtype=np.int32)
    node_cost = cost[node]
    uniq, inverse = np.unique(node_cost, return_inverse=True)
    rank = np.empty(n + 1, dtype=np.int64)
    rank[:n] = inverse
    rank[:n] += 1  # >= 1 (scipy drops zero-weight edges); the sink 0
    rank[n] = 0
    del inverse
    is_free = free[node]
    to_sink = np.flatnonzero(~is_free & (node_cost < np.inf)).astype(np.int32)
    del node, node_cost
    pairs = (
        (np.s_[:, :-1], np.s_[:, 1:]),
        (np.s_[:-1, :], np.s_[1:, :]),
        (np.s_[:-1, :-1], np.s_[1:, 1:]),
        (np.s_[:-1, 1:], np.s_[1:, :-1]),
    )
    keeps = [free[a] | free[b] for a, b in pairs]  # edges between two fixed cells never matter
    edges = sum(int(k.sum()) for k in keeps) + to_sink.size
    src = np.empty(edges, dtype=np.int32)
    dst = np.empty(edges, dtype=np.int32)
    at = 0
    for (a, b), keep in zip(pairs, keeps, strict=True):
        count = int(keep.sum())
        src[at : at + count] = idx[a][keep]
        dst[at : at + count] = idx[b][keep]
        at += count
    del keeps, idx
    src[at:] = to_sink
    dst[at:] = sink
    weight = np.maximum(rank[src], rank[dst]).astype(np.float64)
    graph = sparse.csr_array(sparse.coo_array((weight, (src, dst)), shape=(n + 1, n + 1)))
    del src, dst, weight
    tree = csgraph.minimum_spanning_tree(graph)
    _, pred = csgraph.breadth_first_order(tree, sink, directed=False, return_predecessors=True)
    reached = pred >= 0
    reached[sink] = True
    anc = np.where(pred >= 0, pred, sink).astype(np.int64)
    # level[v]: the highest edge between v and anc[v]; doubled until every ancestor is the sink.
    level = np.maximum(rank, rank[anc])
    level[sink] = 0
    while not np.all(anc == sink):
        level = np.maximum(level, level[anc])
        anc = anc[anc]
    top = uniq.size
    level = np.where(reached, level, top + 1)
    values = np.append(uniq, np.inf)
    result: FloatArray = values[level[:n][is_free] - 1]
    return result


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
    dist = pd_in.astype(np.int64)
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
        centre = pf[1:-1, 1:-1]
        inner = dist[1:-1, 1:-1]
        # The first step from the outlets and from the halo, vectorised over the window.
        for dr, dc in STEPS:
            nb_d = _shifted(dist, dr, dc)
            ok = flat & (_shifted(pf, dr, dc) == centre) & (nb_d < UNKNOWN_DISTANCE)
            np.minimum(inner, np.where(ok, nb_d + 1, UNKNOWN_DISTANCE), out=inner)
        sources = np.zeros((rows, cols), dtype=np.bool_)
        sources[1:-1, 1:-1] = flat & (inner < start)  # everything reached, or what got nearer
        _bucket_bfs(dist.ravel(), eligible.ravel(), pf.ravel(), cols, sources.ravel())
    out = dist[1:-1, 1:-1]
    out = np.where(valid, np.minimum(out, UNKNOWN_DISTANCE), -1)
    return out.astype(np.int32)


def _bucket_bfs(
    dist: IntArray, eligible: BoolArray, level_of: FloatArray, width: int, sources: BoolArray
) -> None:
    """Unit-step shortest paths among ``eligible`` cells of equal ``level_of``, from their current ``dist``.

    ``dist`` (a flat view of a padded window) holds tentative distances, all reached by real paths;
    the search starts from the ``sources`` and goes on wherever it shortens a distance. Cells are
    settled in increasing distance (a bucket queue), so a source whose tentative distance is beaten by
    a path is settled at the shorter one. In place.
    """
    src = np.flatnonzero(sources & (dist < UNKNOWN_DISTANCE))
    if not src.size:
        return
    keys = dist[src]
    order = np.argsort(keys, kind="stable")
    src, keys = src[order], keys[order]
    offsets = [dr * width + dc for dr, dc in STEPS]
    ptr = 0
    current = int(keys[0])
    frontier: IntArray = np.empty(0, dtype=np.int64)
    while True:
        if not frontier.size:
            if ptr >= src.size:
                return
            current = max(current, int(keys[ptr]))
        hi = int(np.searchsorted(keys, current, side="right"))
        if hi > ptr:
            new = src[ptr:hi]
            ptr = hi
            new = new[dist[new] == current]
            frontier = np.union1d(frontier, new) if frontier.size else new
        if not frontier.size:
            continue
        reached: list[IntArray] = []
        levels = level_of[frontier]
        for off in offsets:
            nb = frontier + off
            ok = eligible[nb] & (dist[nb] > current + 1) & (level_of[nb] == levels)
            nb = nb[ok]
            dist[nb] = current + 1
            reached.append(nb)
        frontier = np.concatenate(reached)
        current += 1


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
    h, w = pf.shape[0] - 2, pf.shape[1] - 2
    centre_raw = pf[1:-1, 1:-1]
    valid = np.isfinite(centre_raw)
    blocked = np.where(np.isfinite(pf), pf, np.inf)
    centre = np.where(valid, centre_raw, -np.inf)
    # Steepest descent, with the operations (and their order) of maps.terrain.d8_downstream.
    best = np.full((h, w), -np.inf)
    best_dir = np.full((h, w), -1, dtype=np.int8)
    drop = np.empty((h, w))
    lower = np.empty((h, w), dtype=np.bool_)
    better = np.empty((h, w), dtype=np.bool_)
    drains = np.zeros((h, w), dtype=np.bool_)
    for k, (dr, dc) in enumerate(STEPS):
        neighbour = _shifted(blocked, dr, dc)
        drains |= ~np.isfinite(_shifted(pf, dr, dc))
        np.subtract(centre, neighbour, out=drop)
        np.greater(drop, 0.0, out=lower)
        drop /= size * (SQRT2 if dr and dc else 1.0)
        np.greater(drop, best, out=better)
        better &= lower
        np.copyto(best, drop, where=better)
        np.copyto(best_dir, k, where=better)
    flat = valid & (best_dir < 0) & ~drains
    if flat.any():
        dist = pdist[1:-1, 1:-1]
        todo = flat.copy()
        for k, (dr, dc) in enumerate(STEPS):
            ok = todo & (_shifted(pf, dr, dc) == centre_raw) & (_shifted(pdist, dr, dc) == dist - 1)
            best_dir[ok] = k
            todo &= ~ok
        if todo.any():
            r, c = np.argwhere(todo)[0]
            raise ValueError(
                f"flat cell ({origin[0] + r}, {origin[1] + c}) has no neighbour one step nearer its outlet: "
                "the flat distances are not final"
            )
    row_step = np.array([dr for dr, _ in STEPS] + [0], dtype=np.int64)
    col_step = np.array([dc for _, dc in STEPS] + [0], dtype=np.int64)
    rr = np.arange(h, dtype=np.int64)[:, None] + origin[0] + row_step[best_dir]
    cc = np.arange(w, dtype=np.int64)[None, :] + origin[1] + col_step[best_dir]
    down: IntArray = np.where(best_dir >= 0, rr * grid_cols + cc, -1).astype(np.int64)
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
    So the whole-grid :func:`maps.terrain.downstream_product` is ``q[c] * p[down[exit[c]]]`` where
    ``exit[c] >= 0``, and ``q[c]`` otherwise.

    Args:
        local_down: The tile's local ``down`` (see :func:`local_graph`).
        levels: ``maps.terrain.flow_levels(local_down)``.
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
