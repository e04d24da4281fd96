"""Compiled inner loops (numba): the flow routing, and the regridding of count rasters.

The priority flood, the flat-distance search, topological layers and the sweeps along the flow
graph; the placing and adding of source sub-pixels when counts are regridded (:func:`splat_locate`,
:func:`splat_add`). The only module that imports numba. These loops visit cells in an order that
vectorised numpy cannot express cheaply (a priority queue, a breadth-first search, a walk in flow
order) or only with many temporaries the size of the input; compiled, they run in a few seconds on
tens of millions of cells. The flood and the search give the unique fixpoints described in
:mod:`plastic_hotspots.maps.kernels.windows`, whatever the order of their visits. The sweeps visit cells in
the order
of :func:`plastic_hotspots.maps.science.terrain.flow_levels` (upstream first, or the reverse) and add into
each cell in that
order, so their sums are those of a level-by-level numpy sweep, bit for bit.

Compiled code is cached on disk (numba's ``cache=True``) beside this module, or in numba's user
cache directory where the package folder is read-only, so only the first run pays for compilation
(about a second).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "accumulate_along",
    "d8_directions",
    "first_along",
    "flat_distances",
    "flat_labels",
    "flood_levels",
    "product_along",
    "splat_add",
    "splat_locate",
    "step_lengths",
    "strahler_along",
    "sum_along",
    "topological_levels",
    "value_summary",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
CellArray = npt.NDArray[Any]  # int32 or int64 flat indices

SQRT2 = math.sqrt(2.0)

# Row and column steps of the eight neighbours: N, E, S, W, NE, SE, SW, NW (the order D8 breaks ties in).
_DR = np.array([-1, 0, 1, 0, -1, 1, 1, -1], dtype=np.int64)
_DC = np.array([0, 1, 0, -1, 1, 1, -1, -1], dtype=np.int64)


_DIGIT_BITS = 8
_DIGITS = 1 << _DIGIT_BITS


@njit(cache=True, nogil=True)
def _radix_key(bits: np.uint64) -> np.uint64:
    """An unsigned integer in the order of the float whose bits are ``bits`` (no NaN).

    The sign bit is flipped for positives, all bits for negatives.
    """
    sign = np.uint64(1) << np.uint64(63)
    key: np.uint64 = ~bits if bits & sign else bits | sign
    return key


@njit(cache=True, nogil=True)
def _radix_sort(cells: CellArray, keys: npt.NDArray[np.uint64]) -> CellArray:
    """``cells`` sorted by ``keys``, ties in their given order: an LSD radix sort, 8 bits at a time.

    Both arrays serve as buffers and are overwritten. The histograms of all eight digits come from one
    pass, and passes where every key has the same digit are skipped, so DEMs of whole metres take two
    or three passes. Linear in the cells, unlike a comparison sort or a heap, whose cache misses grow
    with the grid.
    """
    n = cells.size
    mask = np.uint64(_DIGITS - 1)
    passes = 64 // _DIGIT_BITS
    count = np.zeros((passes, _DIGITS), dtype=np.int64)
    for i in range(n):
        key = keys[i]
        for p in range(passes):
            count[p, (key >> np.uint64(p * _DIGIT_BITS)) & mask] += 1
    key_a, key_b = keys, np.empty(n, dtype=np.uint64)
    cell_a, cell_b = cells, np.empty_like(cells)
    for p in range(passes):
        if count[p].max() == n:
            continue  # one digit for all: nothing to reorder
        step = np.uint64(p * _DIGIT_BITS)
        at = 0
        for d in range(_DIGITS):
            c = count[p, d]
            count[p, d] = at
            at += c
        for i in range(n):
            d = (key_a[i] >> step) & mask
            j = count[p, d]
            count[p, d] = j + 1
            key_b[j] = key_a[i]
            cell_b[j] = cell_a[i]
        key_a, key_b = key_b, key_a
        cell_a, cell_b = cell_b, cell_a
    return cell_a


@njit(cache=True, nogil=True)
def _sorted_by_key(cells: IntArray, keys: FloatArray) -> IntArray:
    """``cells`` sorted by ``keys`` (no NaN), ties in their given order (see :func:`_radix_sort`)."""
    bits = keys.view(np.uint64)
    converted = np.empty(cells.size, dtype=np.uint64)
    for i in range(cells.size):
        converted[i] = _radix_key(bits[i])
    order: IntArray = _radix_sort(cells.copy(), converted)
    return order


# States of the cells in the flood.
_UNREACHED = 0
_REACHED = 1
_WAITING = 2  # reached, with a lower neighbour not reached: it spills into it if the flood gets there


@njit(cache=True, nogil=True)
def _candidates(z: FloatArray, f: BoolArray, state: npt.NDArray[np.uint8], cells: CellArray) -> CellArray:
    """The free and waiting cells in the order of their ``z`` (ties by index); ``cells`` is a buffer."""
    bits = z.view(np.uint64)
    keys = np.empty(cells.size, dtype=np.uint64)
    at = 0
    for i in range(z.size):
        if f[i] or state[i] == _WAITING:
            cells[at] = i
            keys[at] = _radix_key(bits[i])
            at += 1
    return _radix_sort(cells, keys)


@njit(cache=True, nogil=True)
def _all_reached(state: npt.NDArray[np.uint8], i: int, offsets: IntArray) -> bool:
    for k in range(8):  # noqa: SIM110 - a loop compiles to less than a generator in numba
        if state[i + offsets[k]] == _UNREACHED:
            return False
    return True


@njit(cache=True, nogil=True)
def _spread(
    z: FloatArray,
    state: npt.NDArray[np.uint8],
    candidates: npt.NDArray[np.integer],
    offsets: IntArray,
) -> None:
    # ``flood`` is the cost of the last waiting cell taken in cost order: every cell below it is
    # settled. A cell reached from one at level L keeps its own elevation if not lower (its level can
    # be no lower: settled at once), else it is in a pit and takes L, if L is the flood level; a cell
    # above the flood level with such a neighbour waits until the flood reaches its cost (it is
    # higher than the flood, so it comes later in the sorted order). A waiting cell whose neighbours
    # have all been reached since stops waiting: taking it would change nothing, and skipping it
    # saves a visit out of spatial order (most cells wait for a while on ordinary terrain).
    stack = np.empty(z.size, dtype=np.int64)  # only the pages it grows into are ever touched
    count = candidates.size
    flood = -np.inf
    top = 0
    next_candidate = 0
    while True:
        if top > 0:
            top -= 1
            i = stack[top]
        else:
            while next_candidate < count and state[candidates[next_candidate]] != _WAITING:
                next_candidate += 1
            if next_candidate == count:
                break
            i = np.int64(candidates[next_candidate])
            next_candidate += 1
            state[i] = _REACHED
            flood = z[i]
        low = z[i]
        waits = False
        for k in range(8):
            j = i + offsets[k]
            if state[j] != _UNREACHED:
                continue
            if z[j] < low:
                if low != flood:
                    waits = True
                    continue
                z[j] = low
            state[j] = _REACHED
            stack[top] = j
            top += 1
        if waits:
            state[i] = _WAITING
        for k in range(8):
            j = i + offsets[k]
            if state[j] == _WAITING and _all_reached(state, j, offsets):
                state[j] = _REACHED


@njit(cache=True, nogil=True)
def _flood(cost: FloatArray, free: BoolArray, dr: IntArray, dc: IntArray) -> FloatArray:
    rows, cols = cost.shape[0] + 2, cost.shape[1] + 2
    n = rows * cols
    # Levels are written over a copy of the costs inside a closed ring (+inf, never free), so every
    # cell the flood reaches has all eight neighbours; a cost is read only before its cell is reached.
    z2 = np.full((rows, cols), np.inf)
    z2[1:-1, 1:-1] = cost
    f2 = np.zeros((rows, cols), dtype=np.bool_)
    f2[1:-1, 1:-1] = free
    z = z2.ravel()
    f = f2.ravel()
    offsets = dr * cols + dc
    # Free cells start unreached, fixed ones reached. Seeds: fixed cells with a known level next to
    # a free cell (never on the ring, which is +inf). They wait for the flood; they and the free cells
    # are the cells that can wait, each at its own cost: sort them by it once.
    state = np.empty(n, dtype=np.uint8)
    count = 0
    for i in range(n):
        if f[i]:
            state[i] = _UNREACHED
            count += 1
            continue
        state[i] = _REACHED
        if z[i] < np.inf:
            for k in range(8):
                if f[i + offsets[k]]:
                    state[i] = _WAITING
                    count += 1
                    break
    if n < 2**31:  # flat indices fit in 32 bits: half the memory to sort
        _spread(z, state, _candidates(z, f, state, np.empty(count, dtype=np.int32)), offsets)
    else:
        _spread(z, state, _candidates(z, f, state, np.empty(count, dtype=np.int64)), offsets)
    for i in range(n):
        if state[i] == _UNREACHED:
            z[i] = np.inf  # free, and no way out
    return z2


def flood_levels(cost: FloatArray, free: BoolArray) -> FloatArray:
    """For each free cell, the lowest level at which it connects to a fixed cell (a minimax path).

    A path's level is the highest ``cost`` of its cells, the fixed cell at its end included. Fixed
    (non-free) cells with ``cost < +inf`` are where paths end (``-inf`` drains at any level); fixed
    cells at ``+inf`` are closed. This is a priority flood from the fixed cells: cells are taken in
    order of their cost (a radix sort, no heap), and each cell is reached once, at its final level.

    Args:
        cost: Elevations, shape ``(rows, cols)``; no NaN.
        free: The cells to solve, same shape.

    Returns:
        The level of every free cell (``+inf`` where no fixed cell can be reached); fixed cells hold
        their cost.
    """
    values = np.ascontiguousarray(cost, dtype=np.float64)
    mask = np.ascontiguousarray(free, dtype=np.bool_)
    if values.shape != mask.shape or values.ndim != 2:
        raise ValueError(
            f"cost and free must be 2-D arrays of one shape, got {values.shape} and {mask.shape}"
        )
    if np.isnan(values).any():
        raise ValueError("cost holds NaN: give -inf for cells that drain, +inf for closed ones")
    out: FloatArray = _flood(values, mask, _DR, _DC)[1:-1, 1:-1]  # the ring off, without a copy
    return out


@njit(cache=True, nogil=True)
def _unit_bfs(
    dist: IntArray,
    level: FloatArray,
    eligible: BoolArray,
    cols: int,
    unknown: int,
    dr: IntArray,
    dc: IntArray,
) -> None:
    rows = dist.size // cols
    n = dist.size
    # Sources: every cell with a known distance next to an eligible cell, in increasing distance.
    count = 0
    for i in range(n):
        if dist[i] >= unknown:
            continue
        r, q = i // cols, i % cols
        for k in range(8):
            rr, qq = r + dr[k], q + dc[k]
            if 0 <= rr < rows and 0 <= qq < cols and eligible[rr * cols + qq]:
                count += 1
                break
    sources = np.empty(count, dtype=np.int64)
    at = 0
    for i in range(n):
        if dist[i] >= unknown:
            continue
        r, q = i // cols, i % cols
        for k in range(8):
            rr, qq = r + dr[k], q + dc[k]
            if 0 <= rr < rows and 0 <= qq < cols and eligible[rr * cols + qq]:
                sources[at] = i
                at += 1
                break
    by_distance = sources[np.argsort(dist[sources], kind="mergesort")]
    source_key = dist[by_distance].copy()
    # A FIFO of cells reached by a step: their distances never decrease along it, so taking the
    # smaller head of the two sequences visits cells in increasing distance (Dijkstra with unit steps).
    queue = np.empty(n, dtype=np.int64)
    queue_key = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    s = 0
    while s < count or head < tail:
        if head < tail and (s >= count or queue_key[head] <= source_key[s]):
            i = queue[head]
            d = queue_key[head]
            head += 1
        else:
            i = by_distance[s]
            d = source_key[s]
            s += 1
        if dist[i] != d:
            continue  # reached again at a shorter distance
        r, q = i // cols, i % cols
        for k in range(8):
            rr, qq = r + dr[k], q + dc[k]
            if rr < 0 or rr >= rows or qq < 0 or qq >= cols:
                continue
            j = rr * cols + qq
            if eligible[j] and dist[j] > d + 1 and level[j] == level[i]:
                dist[j] = d + 1
                queue[tail] = j
                queue_key[tail] = d + 1
                tail += 1


def flat_distances(dist: IntArray, level: FloatArray, eligible: BoolArray, unknown: int) -> None:
    """Unit-step shortest distances through eligible cells of equal ``level``, in place.

    Cells with ``dist < unknown`` are sources at that distance; an eligible cell takes the least
    ``dist + 1`` over its eight neighbours of the same level, until nothing changes.

    Args:
        dist: int64 distances, shape ``(rows, cols)``, C-contiguous; updated in place.
        level: Levels, same shape (NaN never equals anything).
        eligible: The cells whose distance may change, same shape.
        unknown: The distance meaning "not reached".
    """
    if not (dist.shape == level.shape == eligible.shape) or dist.ndim != 2:
        raise ValueError("dist, level and eligible must be 2-D arrays of one shape")
    if dist.dtype != np.int64 or not dist.flags.c_contiguous:
        raise ValueError("dist must be a C-contiguous int64 array")
    _unit_bfs(
        dist.reshape(-1),
        np.ascontiguousarray(level, dtype=np.float64).ravel(),
        np.ascontiguousarray(eligible, dtype=np.bool_).ravel(),
        int(dist.shape[1]),
        int(unknown),
        _DR,
        _DC,
    )


@njit(cache=True, nogil=True)
def _flat_labels(
    z: FloatArray, labels: IntArray, tol: float, none: int, dr: IntArray, dc: IntArray
) -> IntArray:
    rows, cols = z.shape
    h, w = rows - 2, cols - 2
    out = np.full((h, w), none, dtype=np.int64)
    seen = np.zeros((h, w), dtype=np.bool_)
    stack = np.empty(h * w, dtype=np.int64)
    members = np.empty(h * w, dtype=np.int64)
    for start in range(h * w):
        r0, c0 = start // w, start % w
        if seen[r0, c0] or not np.isfinite(z[r0 + 1, c0 + 1]):
            continue
        seen[r0, c0] = True
        stack[0] = start
        top = 1
        count = 0
        best = none
        while top > 0:
            top -= 1
            i = stack[top]
            members[count] = i
            count += 1
            r, c = i // w + 1, i % w + 1
            zi = z[r, c]
            best = min(best, labels[r, c])
            for k in range(8):
                rr, cc = r + dr[k], c + dc[k]
                zj = z[rr, cc]
                if not np.isfinite(zj) or abs(zj - zi) > tol:
                    continue
                if rr == 0 or rr == rows - 1 or cc == 0 or cc == cols - 1:
                    best = min(best, labels[rr, cc])
                elif not seen[rr - 1, cc - 1]:
                    seen[rr - 1, cc - 1] = True
                    stack[top] = (rr - 1) * w + (cc - 1)
                    top += 1
        for m in range(count):
            out[members[m] // w, members[m] % w] = best
    return out


def flat_labels(padded_z: FloatArray, padded_labels: IntArray, tol: float, none: int) -> IntArray:
    """The least label over each group of cells of one level, in one window with its halo.

    Cells are joined when they are 8-neighbours whose elevations differ by at most ``tol``. Every
    cell of the window gets the least label found among its group's own cells (``padded_labels``
    inside the halo) and the halo cells next to the group at the same level (``padded_labels`` on
    the ring): the group's fixpoint given its halo, in one pass.

    Args:
        padded_z: Elevations, ``(h + 2, w + 2)``; NaN is nodata or off the grid (joins nothing).
        padded_labels: int64 labels of the same shape: the window's starting labels inside, the
            neighbours' labels on the ring; ``none`` where there is none.
        tol: Largest difference of elevation between joined neighbours, metres.
        none: The label meaning "none" (larger than every label).

    Returns:
        The labels of the window, int64, ``(h, w)``; ``none`` on nodata cells and on groups with none.
    """
    z = np.ascontiguousarray(padded_z, dtype=np.float64)
    labels = np.ascontiguousarray(padded_labels, dtype=np.int64)
    if z.ndim != 2 or z.shape != labels.shape or z.shape[0] < 3 or z.shape[1] < 3:
        raise ValueError("padded_z and padded_labels must be 2-D arrays of one shape, at least 3 x 3")
    out: IntArray = _flat_labels(z, labels, float(tol), int(none), _DR, _DC)
    return out


@njit(cache=True, nogil=True)
def _d8(
    pf: FloatArray,
    pdist: IntArray,
    divisor: FloatArray,
    origin_row: int,
    origin_col: int,
    grid_cols: int,
    dr: IntArray,
    dc: IntArray,
) -> tuple[IntArray, int]:
    rows, cols = pf.shape
    h, w = rows - 2, cols - 2
    down = np.full((h, w), -1, dtype=np.int64)
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            z = pf[r, c]
            if not np.isfinite(z):
                continue  # nodata
            best = -np.inf
            best_k = -1
            drains = False
            for k in range(8):
                nb = pf[r + dr[k], c + dc[k]]
                if not np.isfinite(nb):
                    drains = True  # off the grid or nodata: never a drop target
                    continue
                drop = z - nb
                if drop > 0.0:
                    slope = drop / divisor[k]
                    if slope > best:
                        best = slope
                        best_k = k
            if best_k < 0:
                if drains:
                    continue  # an outlet on the edge or next to nodata
                want = pdist[r, c] - 1
                for k in range(8):
                    if pf[r + dr[k], c + dc[k]] == z and pdist[r + dr[k], c + dc[k]] == want:
                        best_k = k
                        break
                if best_k < 0:
                    return down, (r - 1) * w + (c - 1)
            down[r - 1, c - 1] = (
                (origin_row + r - 1 + dr[best_k]) * grid_cols + origin_col + c - 1 + dc[best_k]
            )
    return down, -1


def d8_directions(
    padded_filled: FloatArray,
    padded_distance: IntArray,
    cell_size: float,
    origin: tuple[int, int],
    grid_cols: int,
) -> tuple[IntArray, int]:
    """D8 downstream flat indices of a window's inner cells.

    See :func:`plastic_hotspots.maps.kernels.windows.d8_kernel`.

    Returns:
        ``down`` of the inner cells and -1, or, where a flat cell has no neighbour one step nearer its
        outlet, the inner flat index of the first such cell.
    """
    divisor = np.array([cell_size * (SQRT2 if dr and dc else 1.0) for dr, dc in zip(_DR, _DC, strict=True)])
    down, bad = _d8(
        np.ascontiguousarray(padded_filled, dtype=np.float64),
        np.ascontiguousarray(padded_distance, dtype=np.int64),
        divisor,
        int(origin[0]),
        int(origin[1]),
        int(grid_cols),
        _DR,
        _DC,
    )
    return down, int(bad)


@njit(cache=True, nogil=True)
def _levels(down: IntArray) -> tuple[IntArray, IntArray, int]:
    n = down.size
    indegree = np.zeros(n, dtype=np.int32)
    for i in range(n):
        if down[i] >= 0:
            indegree[down[i]] += 1
    depth = np.zeros(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for i in range(n):
        if indegree[i] == 0:
            queue[tail] = i
            tail += 1
    head = 0
    deepest = 0
    while head < tail:
        c = queue[head]
        head += 1
        d = down[c]
        if d < 0:
            continue
        depth[d] = max(depth[d], depth[c] + 1)
        indegree[d] -= 1
        if indegree[d] == 0:
            queue[tail] = d
            tail += 1
            deepest = max(deepest, depth[d])
    if tail != n:
        return queue[:0], np.zeros(1, dtype=np.int64), tail
    # Counting sort by depth; cells keep increasing index within a level.
    bounds = np.zeros(deepest + 2, dtype=np.int64)
    for i in range(n):
        bounds[depth[i] + 1] += 1
    for k in range(deepest + 1):
        bounds[k + 1] += bounds[k]
    fill = bounds[:-1].copy()
    order = queue  # reused: every cell has been through it
    for i in range(n):
        k = depth[i]
        order[fill[k]] = i
        fill[k] += 1
    return order, bounds, n


def topological_levels(down: IntArray) -> tuple[IntArray, IntArray] | None:
    """Cells in flow order, upstream first, and where each layer starts (Kahn's layers).

    A cell's layer is one more than the deepest layer draining into it (0 if none); within a layer
    cells come in increasing flat index.

    Args:
        down: int64 flat downstream indices, -1 where flow leaves the grid.

    Returns:
        ``(order, bounds)``: layer ``k`` is ``order[bounds[k]:bounds[k + 1]]``; None if ``down`` has a
        cycle.
    """
    order, bounds, seen = _levels(np.ascontiguousarray(down, dtype=np.int64))
    if seen != down.size:
        return None
    return order, bounds


@njit(cache=True, nogil=True)
def _accumulate(
    order: IntArray, down: IntArray, acc: FloatArray, passed: FloatArray, use_passed: bool
) -> None:
    for c in order:
        d = down[c]
        if d >= 0:
            acc[d] += acc[c] * passed[c] if use_passed else acc[c]


def accumulate_along(order: IntArray, down: IntArray, acc: FloatArray, passed: FloatArray | None) -> None:
    """``acc[down[c]] += acc[c] (x passed[c])`` for each cell ``c`` of ``order`` (upstream first)."""
    if passed is None:
        _accumulate(order, down, acc, acc[:1], False)
    else:
        _accumulate(order, down, acc, passed, True)


@njit(cache=True, nogil=True)
def product_along(order: IntArray, down: IntArray, factor: FloatArray, stop: BoolArray) -> FloatArray:
    """``p[c] = 1`` on stop cells, else ``factor[c] x p[down[c]]`` (0 off the grid), downstream first."""
    p = np.zeros(down.size, dtype=np.float64)
    for i in range(order.size - 1, -1, -1):
        c = order[i]
        if stop[c]:
            p[c] = 1.0
        elif down[c] >= 0:
            p[c] = factor[c] * p[down[c]]
    return p


@njit(cache=True, nogil=True)
def sum_along(order: IntArray, down: IntArray, steps: FloatArray, stop: BoolArray) -> FloatArray:
    """``s[c] = 0`` on stop cells, else ``steps[c] + s[down[c]]`` (inf off the grid), downstream first."""
    s = np.full(down.size, np.inf)
    for i in range(order.size - 1, -1, -1):
        c = order[i]
        if stop[c]:
            s[c] = 0.0
        elif down[c] >= 0:
            s[c] = steps[c] + s[down[c]]
    return s


@njit(cache=True, nogil=True)
def first_along(order: IntArray, down: IntArray, mask: BoolArray) -> IntArray:
    """The first masked cell on each flow path (the cell itself if masked, -1 if none), downstream first."""
    first = np.full(down.size, -1, dtype=np.int64)
    for i in range(order.size - 1, -1, -1):
        c = order[i]
        if mask[c]:
            first[c] = c
        elif down[c] >= 0:
            first[c] = first[down[c]]
    return first


@njit(cache=True, nogil=True)
def strahler_along(order: IntArray, down: IntArray, river: BoolArray) -> IntArray:
    """Strahler order of river cells, 0 elsewhere.

    See :func:`plastic_hotspots.maps.science.terrain.strahler_order`.
    """
    n = down.size
    count = 0
    for c in order:
        if river[c]:
            count += 1
    cells = np.empty(count, dtype=np.int64)  # river cells in flow order: rivers are a few % of a grid
    at = 0
    for c in order:
        if river[c]:
            cells[at] = c
            at += 1
    result = np.zeros(n, dtype=np.int64)
    top = np.zeros(n, dtype=np.int16)
    count_top = np.zeros(n, dtype=np.int8)  # only "one" or "two or more" matters
    for c in cells:
        k = top[c]
        o = 1 if k == 0 else (k + 1 if count_top[c] >= 2 else k)
        result[c] = o
        d = down[c]
        if d >= 0 and river[d]:
            if o > top[d]:
                top[d] = o
                count_top[d] = 1
            elif o == top[d] and count_top[d] < 2:
                count_top[d] += 1
    return result


@njit(cache=True, nogil=True)
def step_lengths(down: IntArray, cols: int, cell_size: float, diagonal: float) -> FloatArray:
    """Metres from each cell to its downstream cell (``cell_size`` where ``down`` is -1)."""
    out = np.empty(down.size, dtype=np.float64)
    for c in range(down.size):
        d = down[c]
        if d >= 0 and d // cols != c // cols and d % cols != c % cols:
            out[c] = diagonal
        else:
            out[c] = cell_size
    return out


@njit(cache=True, nogil=True)
def value_summary(values: npt.NDArray[np.floating]) -> tuple[float, float, float]:
    """Lowest, highest and sum of the values that are not NaN, in one pass (``+inf, -inf, 0`` if none)."""
    lowest = np.inf
    highest = -np.inf
    total = 0.0
    for x in values.ravel():
        if not math.isnan(x):
            v = float(x)
            lowest = min(lowest, v)
            highest = max(highest, v)
            total += v
    return lowest, highest, total


@njit(cache=True, nogil=True)
def splat_locate(
    counts: npt.NDArray[np.floating],
    rows: tuple[int, int],
    node: npt.NDArray[np.intp],
    frac: FloatArray,
    col_range: IntArray,
    lattice: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    edge: float,
    shape: tuple[int, int],
    cells: IntArray,
    where: IntArray,
) -> tuple[int, int]:
    """Grid cells of the sub-pixels of the valid pixels of source rows ``rows[0]`` to ``rows[1]``.

    The grid coordinates of a sub-pixel in row ``r``, column ``c`` are interpolated between lattice
    rows ``node[r]`` and ``node[r] + 1`` at fraction ``frac[r]``: ``u + frac * du`` and ``v + frac * dv``
    from ``lattice = (u, du, v, dv)``, each ``(lattice rows, source columns)``. Only columns
    ``col_range[node[r]]`` to ``col_range[node[r] + nodes]`` (start, then stop) can reach the grid.
    A valid pixel (finite, non-zero count) is placed in ``cells`` (flat index in a grid of ``shape``),
    in row-major order, with its source flat index in ``where``; one whose centre is farther than
    ``edge`` from its cell's centre (in either coordinate, in cells) gets -2: its cell must come from
    an exact transform. Pixels outside the grid are left out.

    Returns:
        How many pixels were placed, and how many of them got -2.
    """
    u_at, du, v_at, dv = lattice
    height, width = shape
    nodes = col_range.size // 2
    cols = counts.shape[1]
    placed = 0
    unsure = 0
    for r in range(rows[0], rows[1]):
        j = node[r]
        t = frac[r]
        for c in range(col_range[j], col_range[nodes + j]):
            x = counts[r, c]
            if not (math.isfinite(x) and x != 0):
                continue
            u = u_at[j, c] + t * du[j, c]
            v = v_at[j, c] + t * dv[j, c]
            cu = np.floor(u)
            cv = np.floor(v)
            if max(abs(u - cu - 0.5), abs(v - cv - 0.5)) > edge:
                cells[placed] = -2
                unsure += 1
            elif 0 <= cu < width and 0 <= cv < height:
                cells[placed] = np.int64(cv) * width + np.int64(cu)
            else:
                continue
            where[placed] = r * cols + c
            placed += 1
    return placed, unsure


@njit(cache=True, nogil=True)
def splat_add(
    flat: FloatArray, cells: IntArray, where: IntArray, counts: npt.NDArray[np.floating], divisor: float
) -> None:
    """In order, add the count of source pixel ``where[i]`` over ``divisor`` to ``flat[cells[i]]``.

    Cells below 0 are skipped; counts are widened to float64 before the division (see
    :func:`splat_locate`).
    """
    source = counts.ravel()
    for i in range(cells.size):
        cell = cells[i]
        if cell >= 0:
            flat[cell] += np.float64(source[where[i]]) / divisor


def warm_up() -> None:
    """Compile (or load from the cache) every kernel now, on tiny inputs.

    Compilation is a fixed start-up cost, like an import: call this first where memory or time is
    measured from a baseline.
    """
    cost = np.array([[-np.inf, -np.inf, -np.inf], [-np.inf, 1.0, -np.inf], [-np.inf, -np.inf, -np.inf]])
    flood_levels(cost, np.isfinite(cost))
    dist = np.zeros((3, 3), dtype=np.int64)
    dist[1, 1] = 1 << 30
    flat_distances(dist, np.zeros((3, 3)), dist > 0, 1 << 30)
    flat_labels(np.zeros((3, 3)), dist, 0.0, 1 << 30)
    d8_directions(np.where(cost == -np.inf, np.nan, cost), dist, 1.0, (0, 0), 1)
    down = np.array([1, -1], dtype=np.int64)
    levels = topological_levels(down)
    assert levels is not None
    order = levels[0]
    values = np.ones(2)
    accumulate_along(order, down, values, None)
    accumulate_along(order, down, values, values)
    mask = np.array([False, True])
    product_along(order, down, values, mask)
    sum_along(order, down, values, mask)
    first_along(order, down, mask)
    strahler_along(order, down, ~mask)
    step_lengths(down, 2, 1.0, SQRT2)
    for counts in (np.ones((2, 2)), np.ones((2, 2), dtype=np.float32)):
        value_summary(counts)
        node, frac = np.zeros(2, dtype=np.intp), np.zeros(2)
        lattice = (np.zeros((2, 2)), np.ones((2, 2)), np.zeros((2, 2)), np.ones((2, 2)))
        cells, where = np.empty(4, dtype=np.int64), np.empty(4, dtype=np.int64)
        ranges = np.array([0, 2], dtype=np.int64)
        placed, _ = splat_locate(counts, (0, 2), node, frac, ranges, lattice, 0.5, (2, 2), cells, where)
        splat_add(np.zeros(4), cells[:placed], where[:placed], counts, 1.0)
