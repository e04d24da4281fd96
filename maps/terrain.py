"""DEM conditioning and D8 flow routing on one grid, in numpy (no I/O, no compiled extensions).

Conventions shared by every function here:

* A raster is a 2-D ``float64`` array; row 0 is the north edge, column 0 the west edge, and cells are
  squares of ``cell_size`` metres. Nodata cells hold NaN (a boolean ``nodata`` mask or a sentinel
  value can be given as well where a function takes ``nodata``).
* A cell is addressed by its flat index ``r * ncols + c`` (row-major, as ``ndarray.ravel()`` gives).
  ``N = rows * cols``.
* The flow graph is an ``int64`` array ``down`` of length ``N``: the flat index of each cell's D8
  downstream neighbour, or ``-1`` where the cell drains off the grid, drains into a nodata cell, or
  is nodata itself. Following ``down`` from any cell of a conditioned DEM ends at ``-1``.
* ``levels`` (from :func:`flow_levels`) split the flat indices into topological layers: every cell
  comes in a later layer than all cells that drain into it. Upstream-to-downstream sweeps
  (:func:`accumulate`, :func:`strahler_order`) walk the layers in order, downstream-to-upstream
  sweeps (:func:`downstream_product`, :func:`first_downstream`, :func:`downstream_distance`) walk
  them backwards; each layer is one vectorised numpy step.

Only :func:`fill_depressions` runs a per-cell Python loop (a priority flood has no vectorised form);
everything else is vectorised over the grid or over one layer.
"""

from __future__ import annotations

import math
from array import array
from collections import deque

import numpy as np
import numpy.typing as npt

__all__ = [
    "accumulate",
    "d8_downstream",
    "downstream_distance",
    "downstream_product",
    "fill_depressions",
    "first_downstream",
    "flow_levels",
    "hillshade",
    "label_catchments",
    "slope",
    "snap_to_max",
    "step_length",
    "strahler_order",
    "upstream_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SQRT2 = math.sqrt(2.0)

# The eight D8 directions as (row step, column step), in the order used to break ties between
# equally steep directions: the cardinal directions first (N, E, S, W), then the diagonals.
_D8_STEPS: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (0, 1),
    (1, 0),
    (0, -1),
    (-1, 1),
    (1, 1),
    (1, -1),
    (-1, -1),
)


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _as_raster(dem: npt.ArrayLike, name: str = "dem") -> FloatArray:
    """``dem`` as a 2-D float64 array with at least one cell, or a ValueError."""
    arr = np.asarray(dem, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D raster (rows, cols), got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must have at least one cell, got shape {arr.shape}")
    return arr


def _check_cell_size(cell_size: float) -> float:
    """``cell_size`` as a float if it is a finite positive number, else a ValueError."""
    value = float(cell_size)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"cell_size must be a finite number of metres > 0, got {cell_size!r}")
    return value


def _nodata_mask(dem: FloatArray, nodata: BoolArray | float | None) -> BoolArray:
    """Cells without data: non-finite values, plus the ``nodata`` mask or sentinel value."""
    mask = ~np.isfinite(dem)
    if nodata is None:
        return mask
    if isinstance(nodata, np.ndarray):
        if nodata.shape != dem.shape:
            raise ValueError(
                f"nodata mask must have the raster's shape {dem.shape}, got shape {nodata.shape}"
            )
        if nodata.dtype != np.bool_:
            raise ValueError(f"nodata mask must be a boolean array, got dtype {nodata.dtype}")
        return mask | nodata
    sentinel = float(nodata)
    if math.isnan(sentinel):
        return mask
    return np.asarray(mask | (dem == sentinel), dtype=np.bool_)


def _check_down(down: npt.ArrayLike) -> IntArray:
    """``down`` as a flat int64 array whose entries are -1 or a valid flat index, else a ValueError."""
    arr = np.asarray(down)
    if arr.ndim != 1:
        raise ValueError(f"down must be a flat (1-D) array of flat indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"down must hold integer flat indices, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=False)
    if out.size:
        lo, hi = int(out.min()), int(out.max())
        if lo < -1 or hi >= out.size:
            raise ValueError(
                f"down must hold -1 or flat indices in [0, {out.size - 1}], got values from {lo} to {hi}"
            )
    return out


def _check_levels(levels: list[IntArray], n: int) -> None:
    """A ValueError unless ``levels`` hold ``n`` indices in all (as :func:`flow_levels` returns)."""
    total = sum(int(np.asarray(level).size) for level in levels)
    if total != n:
        raise ValueError(
            f"levels must cover every one of the {n} cells of down exactly once (use flow_levels(down)), "
            f"got {total} indices in {len(levels)} levels"
        )


def _down_or_sink(down: IntArray) -> IntArray:
    """``down`` with -1 replaced by ``N``: an extra slot that the sweeps keep past the grid's cells."""
    return np.where(down >= 0, down, down.size)


def _flat_array(values: npt.ArrayLike, n: int, name: str) -> npt.NDArray[np.generic]:
    """``values`` as an array of shape ``(n,)``, else a ValueError."""
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(
            f"{name} must be a flat array with one value per cell, shape ({n},) (ravel a raster first), "
            f"got shape {arr.shape}"
        )
    return arr


def _flat_float(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    """``values`` as a float64 array of shape ``(n,)``, else a ValueError."""
    return _flat_array(values, n, name).astype(np.float64, copy=False)


def _flat_bool(values: npt.ArrayLike, n: int, name: str) -> BoolArray:
    """``values`` as a boolean array of shape ``(n,)``, else a ValueError."""
    return _flat_array(values, n, name).astype(np.bool_, copy=False)


# --------------------------------------------------------------------------------------------------
# Conditioning and routing
# --------------------------------------------------------------------------------------------------


def fill_depressions(
    dem: FloatArray, nodata: BoolArray | float | None = None, epsilon: float = 1e-6
) -> FloatArray:
    """Fill depressions so that every cell drains, by Priority-Flood + epsilon (Barnes et al. 2014).

    The flood starts from the cells that can drain without help: valid cells on the grid edge and
    valid cells 8-adjacent to nodata. It repeatedly takes the lowest cell reached so far and visits its
    unvisited neighbours; a neighbour not higher than that cell is raised to ``cell + epsilon`` (and
    handled next through a plain FIFO queue, Barnes' "pit queue", which keeps heap traffic low in
    depressions), a higher one keeps its elevation and goes on the heap. Every cell the flood reaches
    from another is therefore strictly higher than that cell, so after filling every valid cell has a
    strictly descending 8-connected path to the grid edge or to nodata, and no cell is lowered.

    The increment: ``epsilon`` is a fixed height in metres (default 1e-6 m), not a relative one.
    float64 resolves about 2e-12 m at 9000 m, so 1e-6 m is always representable on Earth's elevations,
    and it is far below any DEM's vertical precision, so filled flats stay flat for practical purposes
    (a flat of ``k`` cells is tilted by at most ``k * epsilon``). Where ``value + epsilon`` would round
    back to ``value`` (huge values, or ``epsilon=0``), the next representable float above is used
    instead, so the increase is always strict.

    Args:
        dem: Elevations in metres, shape ``(rows, cols)``; NaN (or any non-finite value) is nodata.
        nodata: Extra nodata cells: a boolean mask of the DEM's shape, or a sentinel elevation.
        epsilon: Minimum rise, metres, from a cell to any cell the flood raises from it; >= 0.

    Returns:
        The filled DEM (a new array, ``>= dem`` on valid cells), NaN on nodata cells.

    Raises:
        ValueError: If ``dem`` is not a non-empty 2-D array, ``nodata`` does not match it, or
            ``epsilon`` is negative or not finite.
    """
    z2 = _as_raster(dem)
    eps = float(epsilon)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"epsilon must be a finite number of metres >= 0, got {epsilon!r}")
    nodata_mask = _nodata_mask(z2, nodata)
    rows, cols = z2.shape
    width = cols + 2

    # Pad with a ring of closed cells so that neighbour look-ups never leave the flat array.
    blocked = np.ones((rows + 2, cols + 2), dtype=np.bool_)
    blocked[1:-1, 1:-1] = nodata_mask
    valid = ~nodata_mask
    # Seeds: valid cells with a blocked 8-neighbour (the outer ring or nodata).
    near_blocked = np.zeros((rows, cols), dtype=np.bool_)
    for dr, dc in _D8_STEPS:
        near_blocked |= blocked[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    seed_mask = valid & near_blocked

    padded = np.zeros((rows + 2, cols + 2), dtype=np.float64)
    padded[1:-1, 1:-1] = np.where(valid, z2, 0.0)
    closed_np = blocked.copy()
    closed_np[1:-1, 1:-1] |= seed_mask

    r_seed, c_seed = np.nonzero(seed_mask)
    seeds = ((r_seed + 1) * width + (c_seed + 1)).tolist()
    flat = padded.ravel()
    # Heap pops come in increasing (elevation, index) order (see _priority_flood): a stable sort of the
    # valid cells gives that order up front.
    order = np.argsort(flat, kind="stable")
    order = order[~blocked.ravel()[order]]
    z = array("d", flat.tobytes())
    closed = bytearray(closed_np.ravel().tobytes())
    offsets = tuple(dr * width + dc for dr, dc in _D8_STEPS)
    _priority_flood(z, closed, seeds, order, offsets, eps)

    out = np.frombuffer(z, dtype=np.float64).reshape(rows + 2, cols + 2)[1:-1, 1:-1].copy()
    out[nodata_mask] = np.nan
    return out


# States of a cell in the flood: not reached yet, processed (or raised into the pit queue), and
# reached with its own elevation and waiting for its turn (where the heap would hold it).
_OPEN, _DONE, _WAITING = 0, 1, 2
_SCAN_CHUNK = 1 << 20  # cells of ``order`` turned into a Python list at a time


def _priority_flood(
    z: array[float],
    closed: bytearray,
    seeds: list[int],
    order: IntArray,
    offsets: tuple[int, ...],
    eps: float,
) -> None:
    """Priority-Flood + epsilon with a pit queue, in place on the padded flat elevations ``z``.

    ``closed`` marks cells already reached (seeds, nodata and the padding ring are closed on entry).

    No heap is kept: a cell goes on the heap only with an elevation strictly above the one just taken
    off it (it is higher than the cell that reached it, and pit cells are never lower than the cell
    their chain started from), so the cells leave the heap in strictly increasing (elevation, index)
    order, which is ``order`` (a stable argsort) restricted to the cells that went on the heap. The
    scan walks ``order`` and takes each cell marked as waiting; the result is the heap's, bit for bit.
    """
    for i in seeds:
        closed[i] = _WAITING
    pit: deque[int] = deque()
    pit_pop = pit.popleft
    pit_push = pit.append
    nextafter = math.nextafter
    inf = math.inf
    o0, o1, o2, o3, o4, o5, o6, o7 = offsets
    done, waiting = _DONE, _WAITING  # locals: faster than globals in the loop
    for start in range(0, order.size, _SCAN_CHUNK):
        for taken in order[start : start + _SCAN_CHUNK].tolist():
            if closed[taken] != waiting:
                continue  # raised (or to be raised) by a pit chain
            closed[taken] = done
            c = taken
            zc = z[c]
            while True:
                raised = zc + eps
                if raised <= zc:
                    raised = nextafter(zc, inf)
                # The eight neighbours, unrolled (a loop over the offsets costs 15 % more here).
                n = c + o0
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o1
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o2
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o3
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o4
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o5
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o6
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                n = c + o7
                if not closed[n]:
                    if z[n] <= zc:
                        closed[n] = done
                        z[n] = raised
                        pit_push(n)
                    else:
                        closed[n] = waiting
                if not pit:
                    break
                c = pit_pop()
                zc = z[c]


def d8_downstream(filled: FloatArray, cell_size: float, nodata: BoolArray | float | None = None) -> IntArray:
    """D8 flow directions as flat downstream indices.

    Each valid cell drains to the neighbour of steepest descent, ``drop / distance`` with distance
    ``cell_size`` to the four edge neighbours and ``sqrt(2) * cell_size`` to the diagonal ones, among
    the valid neighbours strictly lower than the cell. Ties go to the first direction in the order
    N, E, S, W, NE, SE, SW, NW. A cell with no strictly lower valid neighbour gets -1: on a
    conditioned DEM those are exactly cells on the grid edge (they drain off the grid) and cells next
    to nodata (they drain into it); on an unconditioned DEM pits and flats get -1 too. Nodata cells
    have no elevation, so they are never a drop target; they get -1 themselves.

    Args:
        filled: Conditioned elevations (see :func:`fill_depressions`), metres; NaN is nodata.
        cell_size: Cell edge in metres, > 0.
        nodata: Extra nodata cells: a boolean mask of the raster's shape, or a sentinel value.

    Returns:
        ``down``: int64 array of length ``rows * cols``.

    Raises:
        ValueError: If ``filled`` is not a non-empty 2-D array, ``cell_size`` is not > 0, or
            ``nodata`` does not match the raster.
    """
    z = _as_raster(filled, "filled")
    size = _check_cell_size(cell_size)
    nodata_mask = _nodata_mask(z, nodata)
    rows, cols = z.shape
    # Blocked cells (padding and nodata) are +inf, so they are never lower; the centre of a nodata
    # cell is -inf, so it has no lower neighbour. Neither produces NaN: a drop is -inf there.
    padded = np.full((rows + 2, cols + 2), np.inf)
    padded[1:-1, 1:-1] = np.where(nodata_mask, np.inf, z)
    centre = np.where(nodata_mask, -np.inf, z)

    # Only strictly lower neighbours count (centre - neighbour > 0, which is exact for floats); a
    # drop per metre that underflows to 0 still counts, as it beats the initial -inf.
    best: FloatArray = np.full((rows, cols), -np.inf)
    best_dir = np.full((rows, cols), -1, dtype=np.int8)
    drop = np.empty((rows, cols))
    lower = np.empty((rows, cols), dtype=np.bool_)
    better = np.empty((rows, cols), dtype=np.bool_)
    for k, (dr, dc) in enumerate(_D8_STEPS):
        neighbour = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        np.subtract(centre, neighbour, out=drop)
        np.greater(drop, 0.0, out=lower)
        drop /= size * (SQRT2 if dr and dc else 1.0)
        np.greater(drop, best, out=better)
        better &= lower
        np.copyto(best, drop, where=better)
        np.copyto(best_dir, k, where=better)

    offsets = np.array([dr * cols + dc for dr, dc in _D8_STEPS] + [0], dtype=np.int64)
    flat_dir = best_dir.ravel()
    down = np.arange(rows * cols, dtype=np.int64)
    down += offsets[flat_dir]  # direction -1 picks the trailing 0; overwritten below
    down[flat_dir < 0] = -1
    return down


def step_length(down: IntArray, shape: tuple[int, ...], cell_size: float) -> FloatArray:
    """Metres from each cell to its downstream cell.

    ``cell_size`` to an edge neighbour, ``sqrt(2) * cell_size`` to a diagonal one. Cells with
    ``down == -1`` (flow leaving the grid or entering nodata, and nodata cells) get ``cell_size``: the
    exit step is counted as one cell edge, so losses along the last step are not dropped.

    Args:
        down: Flat downstream indices (see :func:`d8_downstream`).
        shape: ``(rows, cols)`` of the grid.
        cell_size: Cell edge in metres, > 0.

    Returns:
        Step lengths, float64, same length as ``down``.

    Raises:
        ValueError: If ``down`` does not fit ``shape`` or ``cell_size`` is not > 0.
    """
    size = _check_cell_size(cell_size)
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, cols), got {shape!r}")
    rows, cols = int(shape[0]), int(shape[1])
    d = _check_down(down)
    if d.size != rows * cols:
        raise ValueError(
            f"down must have rows * cols = {rows * cols} entries for shape {shape}, got {d.size}"
        )
    # A cell with down == -1 is its own target (not diagonal). Rows and columns of the cells
    # themselves broadcast from two ranges.
    target = np.where(d >= 0, d, np.arange(d.size, dtype=np.int64))
    t_row, t_col = np.divmod(target.reshape(rows, cols), cols)
    diagonal = (t_row != np.arange(rows)[:, None]) & (t_col != np.arange(cols)[None, :])
    return np.where(diagonal, size * SQRT2, size).astype(np.float64).ravel()


def flow_levels(down: IntArray) -> list[IntArray]:
    """Topological layers of the flow graph (Kahn's algorithm, one vectorised step per layer).

    Level 0 holds the cells nothing drains into; each later level holds the cells all of whose upstream
    cells are in earlier levels. Every flat index appears in exactly one level, sorted within it.

    Args:
        down: Flat downstream indices (see :func:`d8_downstream`).

    Returns:
        The layers, upstream first, as int64 arrays of flat indices.

    Raises:
        ValueError: If ``down`` is malformed, or has a cycle (some cells never drain off the grid).
    """
    d = _check_down(down)
    n = d.size
    indegree = np.bincount(d[d >= 0], minlength=n).astype(np.int64)
    frontier = np.flatnonzero(indegree == 0).astype(np.int64)
    levels: list[IntArray] = []
    seen = 0
    while frontier.size:
        levels.append(frontier)
        seen += frontier.size
        targets = d[frontier]
        targets = targets[targets >= 0]
        if not targets.size:
            break
        np.subtract.at(indegree, targets, 1)
        frontier = np.unique(targets[indegree[targets] == 0]).astype(np.int64, copy=False)
    if seen != n:
        stuck = np.flatnonzero(indegree > 0)
        raise ValueError(
            f"down has a cycle: {n - seen} of {n} cells never drain off the grid "
            f"(first stuck cell: flat index {int(stuck[0])}, which drains to {int(d[stuck[0]])})"
        )
    return levels


# --------------------------------------------------------------------------------------------------
# Sweeps along the flow graph
# --------------------------------------------------------------------------------------------------


def accumulate(
    down: IntArray, levels: list[IntArray], weights: FloatArray, transfer: FloatArray | None = None
) -> FloatArray:
    """Weighted flow accumulation with an optional pass-on fraction per cell.

    ``acc[c] = weights[c] + sum(acc[u] * transfer[u] for u draining into c)``. With ``weights`` all 1
    and no ``transfer`` this is the upstream area in cells (the cell itself included).

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        weights: What each cell contributes, length ``N``.
        transfer: Fraction of its accumulated value each cell passes downstream, length ``N``;
            1 everywhere if omitted.

    Returns:
        The accumulated values, float64, length ``N``.

    Raises:
        ValueError: If the arrays do not all have length ``N`` or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    _check_levels(levels, n)
    # One extra slot at index n takes what drains off the grid, and is dropped at the end.
    acc = np.zeros(n + 1, dtype=np.float64)
    acc[:n] = _flat_float(weights, n, "weights")
    passed = None if transfer is None else _flat_float(transfer, n, "transfer")
    target = _down_or_sink(d)
    for level in levels:
        amount = acc[level] if passed is None else acc[level] * passed[level]
        np.add.at(acc, target[level], amount)
    return acc[:n]


def downstream_product(
    down: IntArray, levels: list[IntArray], factor: FloatArray, stop: BoolArray
) -> FloatArray:
    """Product of per-cell factors along each flow path, up to the first stop cell.

    ``p[c] = 1`` if ``stop[c]``; else ``factor[c] * p[down[c]]`` if ``down[c] >= 0``; else 0. With
    ``factor`` the chance of surviving one step and ``stop`` the river cells, ``p`` is the probability
    that something leaving ``c`` reaches a river; paths that leave the grid first give 0.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        factor: Per-cell factor for the step from the cell to its downstream cell, length ``N``.
        stop: Cells where the product ends with 1, length ``N``.

    Returns:
        ``p``, float64, length ``N``.

    Raises:
        ValueError: If the arrays do not all have length ``N`` or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    _check_levels(levels, n)
    f = _flat_float(factor, n, "factor")
    s = _flat_bool(stop, n, "stop")
    # Cells that drain off the grid point at an extra slot holding 0, with factor 0: onward is 0.0.
    target = _down_or_sink(d)
    f_on = np.where(d >= 0, f, 0.0)
    p = np.zeros(n + 1, dtype=np.float64)
    for level in reversed(levels):
        p[level] = np.where(s[level], 1.0, f_on[level] * p[target[level]])
    return p[:n]


def first_downstream(down: IntArray, levels: list[IntArray], mask: BoolArray) -> IntArray:
    """The first cell of ``mask`` met along each cell's flow path.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        mask: Target cells, length ``N``.

    Returns:
        int64 flat indices, length ``N``: ``c`` itself where ``mask[c]``, the first masked cell
        downstream otherwise, -1 where the path leaves the grid first.

    Raises:
        ValueError: If ``mask`` does not have length ``N`` or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    _check_levels(levels, n)
    m = _flat_bool(mask, n, "mask")
    target = _down_or_sink(d)
    first = np.full(n + 1, -1, dtype=np.int64)  # the extra slot, for flow off the grid, stays -1
    for level in reversed(levels):
        first[level] = np.where(m[level], level, first[target[level]])
    return first[:n]


def downstream_distance(
    down: IntArray, levels: list[IntArray], lengths: FloatArray, stop: BoolArray
) -> FloatArray:
    """Metres along each flow path to the first stop cell.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        lengths: Step length from each cell to its downstream cell (see :func:`step_length`).
        stop: Target cells, length ``N``.

    Returns:
        float64, length ``N``: 0 on stop cells, the summed step lengths to the first stop cell
        elsewhere, ``inf`` where the path leaves the grid without meeting one.

    Raises:
        ValueError: If the arrays do not all have length ``N`` or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    _check_levels(levels, n)
    steps = _flat_float(lengths, n, "lengths")
    s = _flat_bool(stop, n, "stop")
    # Cells that drain off the grid point at an extra slot holding inf, with a step of 0: onward is inf.
    target = _down_or_sink(d)
    steps_on = np.where(d >= 0, steps, 0.0)
    dist = np.full(n + 1, np.inf, dtype=np.float64)
    for level in reversed(levels):
        dist[level] = np.where(s[level], 0.0, steps_on[level] + dist[target[level]])
    return dist[:n]


def upstream_of(down: IntArray, levels: list[IntArray], index: int) -> BoolArray:
    """The cells whose flow path passes through ``index`` (``index`` included): its drainage basin.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        index: Flat index of the outlet cell.

    Returns:
        Flat boolean mask, length ``N``.

    Raises:
        ValueError: If ``index`` is not a flat index of the grid or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    outlet = int(index)
    if not 0 <= outlet < n:
        raise ValueError(f"index must be a flat index in [0, {n - 1}], got {index!r}")
    target = np.zeros(n, dtype=np.bool_)
    target[outlet] = True
    return np.asarray(first_downstream(d, levels, target) == outlet, dtype=np.bool_)


def label_catchments(down: IntArray, levels: list[IntArray], pour_points: IntArray) -> IntArray:
    """Label every cell with the pour point its flow reaches first.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        pour_points: Distinct flat indices of the pour points (catchment outlets).

    Returns:
        int64, length ``N``: the position (0 to ``k - 1``) in ``pour_points`` of the first pour
        point on each cell's flow path (a pour point is labelled with its own position), -1 where the
        path leaves the grid without meeting one.

    Raises:
        ValueError: If ``pour_points`` holds out-of-range or repeated indices, or ``levels`` do not
            cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    points = np.asarray(pour_points)
    if points.ndim != 1 or (points.size and not np.issubdtype(points.dtype, np.integer)):
        raise ValueError(
            f"pour_points must be a flat array of integer flat indices, got shape {points.shape} "
            f"and dtype {points.dtype}"
        )
    pts = points.astype(np.int64, copy=False)
    if pts.size and (int(pts.min()) < 0 or int(pts.max()) >= n):
        raise ValueError(
            f"pour_points must be flat indices in [0, {n - 1}], got values from {int(pts.min())} "
            f"to {int(pts.max())}"
        )
    uniq, counts = np.unique(pts, return_counts=True)
    if np.any(counts > 1):
        repeated = int(uniq[counts > 1][0])
        raise ValueError(f"pour_points must be distinct, got flat index {repeated} more than once")
    position = np.full(n, -1, dtype=np.int64)
    position[pts] = np.arange(pts.size, dtype=np.int64)
    first = first_downstream(d, levels, position >= 0)
    return np.where(first >= 0, position[np.where(first >= 0, first, 0)], -1).astype(np.int64)


def strahler_order(down: IntArray, levels: list[IntArray], river_mask: BoolArray) -> IntArray:
    """Strahler stream order of the river cells.

    A river cell with no river cell draining into it has order 1. Otherwise, with ``k`` the highest
    order among the river cells draining into it, it has order ``k + 1`` if two or more of them have
    order ``k``, else ``k``. Non-river cells draining into a river cell do not count.

    Args:
        down: Flat downstream indices.
        levels: ``flow_levels(down)``.
        river_mask: River cells, length ``N``.

    Returns:
        int64, length ``N``: the order on river cells, 0 elsewhere.

    Raises:
        ValueError: If ``river_mask`` does not have length ``N`` or ``levels`` do not cover ``down``.
    """
    d = _check_down(down)
    n = d.size
    _check_levels(levels, n)
    river = _flat_bool(river_mask, n, "river_mask")
    level_of = np.empty(n, dtype=np.int64)
    for i, level in enumerate(levels):
        level_of[level] = i

    # River-to-river edges, grouped by the level of their downstream cell: when a level is processed,
    # the orders of all river cells draining into it (earlier levels) are final.
    src = np.flatnonzero(river & (d >= 0))
    dst = d[src]
    keep = river[dst]
    src, dst = src[keep], dst[keep]
    by_level = np.argsort(level_of[dst], kind="stable")
    src, dst = src[by_level], dst[by_level]
    bounds = np.searchsorted(level_of[dst], np.arange(len(levels) + 1))

    order = np.zeros(n, dtype=np.int64)
    top = np.zeros(n, dtype=np.int64)
    count_top = np.zeros(n, dtype=np.int64)
    for i, level in enumerate(levels):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if hi > lo:
            u, v = src[lo:hi], dst[lo:hi]
            upstream_order = order[u]
            np.maximum.at(top, v, upstream_order)
            np.add.at(count_top, v, (upstream_order == top[v]).astype(np.int64))
        cells = level[river[level]]
        if not cells.size:
            continue
        k = top[cells]
        order[cells] = np.where(k == 0, 1, np.where(count_top[cells] >= 2, k + 1, k))
    return order


# --------------------------------------------------------------------------------------------------
# Surface derivatives and helpers
# --------------------------------------------------------------------------------------------------


def _horn_gradient(dem: FloatArray, cell_size: float) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Horn (1981) gradient ``(dz/dx east, dz/dy north)`` and the nodata mask.

    Edges are handled by replicating the border rows and columns; a nodata neighbour of a valid cell
    takes the cell's own value, so valid cells next to nodata still get a (flattened) gradient.
    """
    z = _as_raster(dem)
    size = _check_cell_size(cell_size)
    nodata = ~np.isfinite(z)
    rows, cols = z.shape
    padded = np.pad(z, 1, mode="edge")
    centre = np.where(nodata, 0.0, z)

    any_nodata = bool(nodata.any())

    def window(dr: int, dc: int) -> FloatArray:
        value = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        return np.where(np.isfinite(value), value, centre) if any_nodata else value

    def weighted(p: FloatArray, q: FloatArray, r: FloatArray) -> FloatArray:
        """``p + 2 q + r``, in that order of operations, with one temporary."""
        out = q * 2.0
        out += p
        out += r
        return out

    a, b, c = window(-1, -1), window(-1, 0), window(-1, 1)
    d, f = window(0, -1), window(0, 1)
    g, h, i = window(1, -1), window(1, 0), window(1, 1)
    dz_dx = weighted(c, f, i)
    dz_dx -= weighted(a, d, g)
    dz_dx /= 8.0 * size
    dz_dy = weighted(a, b, c)
    dz_dy -= weighted(g, h, i)
    dz_dy /= 8.0 * size
    return dz_dx, dz_dy, nodata


def slope(dem: FloatArray, cell_size: float) -> FloatArray:
    """Slope as rise over run (dimensionless, not degrees), by Horn's 3x3 method.

    Border cells see their missing neighbours as copies of the border (edge replication), so the
    gradient across the grid edge is halved there. Nodata (NaN) neighbours of a valid cell count as
    the cell's own value; nodata cells get NaN.

    Args:
        dem: Elevations in metres, NaN for nodata.
        cell_size: Cell edge in metres, > 0.

    Returns:
        Slope, float64, the DEM's shape.

    Raises:
        ValueError: If ``dem`` is not a non-empty 2-D array or ``cell_size`` is not > 0.
    """
    dz_dx, dz_dy, nodata = _horn_gradient(dem, cell_size)
    out: FloatArray = np.hypot(dz_dx, dz_dy)
    out[nodata] = np.nan
    return out


def hillshade(
    dem: FloatArray,
    cell_size: float,
    azimuth_deg: float = 315.0,
    altitude_deg: float = 45.0,
    z_factor: float = 1.0,
) -> FloatArray:
    """Lambertian hillshade: the cosine of the angle between the surface normal and the sun.

    Gradients are Horn's (as in :func:`slope`); slopes facing away from the sun are 0, a flat cell is
    ``sin(altitude)``.

    Args:
        dem: Elevations in metres, NaN for nodata.
        cell_size: Cell edge in metres, > 0.
        azimuth_deg: Direction of the sun, degrees clockwise from north.
        altitude_deg: Sun height above the horizon, degrees.
        z_factor: Vertical exaggeration.

    Returns:
        Illumination in [0, 1], float64, the DEM's shape; NaN on nodata cells.

    Raises:
        ValueError: If ``dem`` is not a non-empty 2-D array or ``cell_size`` is not > 0.
    """
    dz_dx, dz_dy, nodata = _horn_gradient(dem, cell_size)
    p = float(z_factor) * dz_dx
    q = float(z_factor) * dz_dy
    az = math.radians(float(azimuth_deg))
    alt = math.radians(float(altitude_deg))
    # Unit vector towards the sun (east, north, up) dotted with the surface normal (-p, -q, 1)/|.|.
    sun_e, sun_n, sun_u = math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt)
    shade = (sun_u - p * sun_e - q * sun_n) / np.sqrt(1.0 + p * p + q * q)
    out: FloatArray = np.clip(shade, 0.0, 1.0)
    out[nodata] = np.nan
    return out


def snap_to_max(acc2d: FloatArray, row: int, col: int, radius_cells: int) -> tuple[int, int]:
    """Move a point to the cell of largest accumulation within a square window around it.

    The window spans ``row - radius_cells`` to ``row + radius_cells`` (and likewise for columns),
    clipped to the grid; NaN cells are ignored. Among equal maxima the cell nearest to
    ``(row, col)`` wins (then the first in row-major order). If the window holds only NaN the point
    is returned unchanged.

    Args:
        acc2d: Flow accumulation as a raster.
        row: Row of the point.
        col: Column of the point.
        radius_cells: Half-width of the window in cells, >= 0.

    Returns:
        ``(row, col)`` of the chosen cell.

    Raises:
        ValueError: If ``acc2d`` is not a 2-D array, the point is outside it, or ``radius_cells`` < 0.
    """
    acc = _as_raster(acc2d, "acc2d")
    rows, cols = acc.shape
    r, c, radius = int(row), int(col), int(radius_cells)
    if not (0 <= r < rows and 0 <= c < cols):
        raise ValueError(f"(row, col) must lie in the {rows} x {cols} grid, got ({row}, {col})")
    if radius < 0:
        raise ValueError(f"radius_cells must be >= 0, got {radius_cells!r}")
    r0, r1 = max(r - radius, 0), min(r + radius + 1, rows)
    c0, c1 = max(c - radius, 0), min(c + radius + 1, cols)
    window = acc[r0:r1, c0:c1]
    finite = np.isfinite(window)
    if not finite.any():
        return r, c
    best = np.max(window[finite])
    wr, wc = np.nonzero(finite & (window == best))
    dist2 = (wr + r0 - r) ** 2 + (wc + c0 - c) ** 2
    k = int(np.argmin(dist2))
    return int(wr[k]) + r0, int(wc[k]) + c0
