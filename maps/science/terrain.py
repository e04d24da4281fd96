"""DEM conditioning and D8 flow routing on one grid (no I/O).

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

The priority flood and the flat search of :func:`condition` run compiled
(:mod:`plastic_hotspots.maps.kernels.compiled`);
everything else is vectorised over the grid or over one layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels import compiled
from plastic_hotspots.maps.kernels.windows import (
    UNKNOWN_DISTANCE,
    d8_kernel,
    fill_kernel,
    flat_distance_kernel,
)

__all__ = [
    "Conditioned",
    "accumulate",
    "condition",
    "downstream_distance",
    "downstream_product",
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


def _order(levels: list[IntArray]) -> IntArray:
    """The cells of ``levels`` one after another: flow order, upstream first.

    Levels from :func:`flow_levels` are consecutive slices of one array: that array is returned as
    it is, without a copy.
    """
    if not levels:
        return np.zeros(0, dtype=np.int64)
    base = levels[0].base
    if isinstance(base, np.ndarray) and base.dtype == np.int64 and base.ndim == 1 and base.flags.c_contiguous:
        start = levels[0].__array_interface__["data"][0]
        if start == base.__array_interface__["data"][0]:
            at = start
            for level in levels:
                if level.base is not base or level.__array_interface__["data"][0] != at:
                    break
                at += level.size * 8
            else:
                if at == start + base.size * 8:
                    return base
    return np.concatenate(levels).astype(np.int64, copy=False)


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


@dataclass(frozen=True, slots=True, eq=False)
class Conditioned:
    """A DEM conditioned for D8 routing (see :func:`condition`).

    Attributes:
        filled: Depression-filled elevations, NaN on nodata.
        flat_distance: Steps from each cell of a flat to the flat's nearest outlet (0 off flats, -1 on
            nodata), int32.
        down: Flat downstream indices.
    """

    filled: FloatArray
    flat_distance: npt.NDArray[np.int32]
    down: IntArray


def condition(dem: FloatArray, cell_size: float, nodata: BoolArray | float | None = None) -> Conditioned:
    """Fill depressions, route flats to their nearest outlet, and give every cell its D8 neighbour.

    Three stages, each the fixpoint of a rule on a cell and its eight neighbours, so the same answer
    comes out whether the grid is solved whole (here) or tile by tile
    (:mod:`plastic_hotspots.maps.large.routing`):

    1. Depression fill ``F``: the least surface at or above the DEM that drains to the grid edge or
       to nodata. Filled depressions are exactly flat (no epsilon).
    2. Flat distance: on a flat (a cell with no lower neighbour, not on the edge or next to nodata),
       the 8-connected step count through cells of the same ``F`` to the nearest cell that has one.
    3. D8: each cell drains to the neighbour of steepest descent on ``F`` (``drop / distance``, edge
       neighbours ``cell_size`` away, diagonal ones ``sqrt(2) * cell_size``; ties go to N, E, S, W, NE,
       SE, SW, NW); a flat cell to the first neighbour in that order one step nearer its outlet.
       Cells on the edge or next to nodata with no lower neighbour drain off the grid (``-1``).

    Following ``down`` from any valid cell therefore ends at the grid edge or at nodata, and no cell
    is lowered. See :mod:`plastic_hotspots.maps.kernels.windows` for the kernels.

    Args:
        dem: Elevations in metres, ``(rows, cols)``; NaN (or any non-finite value) is nodata.
        cell_size: Cell edge in metres, > 0.
        nodata: Extra nodata cells: a boolean mask of the DEM's shape, or a sentinel elevation.

    Returns:
        The filled DEM, the flat distances and ``down``.

    Raises:
        ValueError: If ``dem`` is not a non-empty 2-D array, ``nodata`` does not match it, or
            ``cell_size`` is not > 0.
    """
    z = _as_raster(dem)
    size = _check_cell_size(cell_size)
    nodata_mask = _nodata_mask(z, nodata)
    rows, cols = z.shape
    padded = np.full((rows + 2, cols + 2), np.nan)
    padded[1:-1, 1:-1] = np.where(nodata_mask, np.nan, z)
    filled = fill_kernel(padded)
    padded[1:-1, 1:-1] = filled
    distance = flat_distance_kernel(padded, np.full(padded.shape, UNKNOWN_DISTANCE, dtype=np.int64))
    padded_distance = np.full(padded.shape, UNKNOWN_DISTANCE, dtype=np.int64)
    padded_distance[1:-1, 1:-1] = distance
    down = d8_kernel(padded, padded_distance, size, (0, 0), cols).ravel()
    return Conditioned(filled=filled, flat_distance=distance, down=down)


def step_length(down: IntArray, shape: tuple[int, ...], cell_size: float) -> FloatArray:
    """Metres from each cell to its downstream cell.

    ``cell_size`` to an edge neighbour, ``sqrt(2) * cell_size`` to a diagonal one. Cells with
    ``down == -1`` (flow leaving the grid or entering nodata, and nodata cells) get ``cell_size``: the
    exit step is counted as one cell edge, so losses along the last step are not dropped.

    Args:
        down: Flat downstream indices (see :func:`condition`).
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
    steps: FloatArray = compiled.step_lengths(d, cols, size, size * SQRT2)
    return steps


def flow_levels(down: IntArray) -> list[IntArray]:
    """Topological layers of the flow graph (Kahn's algorithm, one vectorised step per layer).

    Level 0 holds the cells nothing drains into; each later level holds the cells all of whose upstream
    cells are in earlier levels. Every flat index appears in exactly one level, sorted within it.

    Args:
        down: Flat downstream indices (see :func:`condition`).

    Returns:
        The layers, upstream first, as int64 arrays of flat indices.

    Raises:
        ValueError: If ``down`` is malformed, or has a cycle (some cells never drain off the grid).
    """
    d = _check_down(down)
    n = d.size
    found = compiled.topological_levels(d)
    if found is None:
        indegree = np.bincount(d[d >= 0], minlength=n)
        reached = np.zeros(n, dtype=np.bool_)
        frontier = np.flatnonzero(indegree == 0)
        while frontier.size:  # peel off what drains, to name a cell that does not
            reached[frontier] = True
            targets = d[frontier]
            targets = targets[targets >= 0]
            np.subtract.at(indegree, targets, 1)
            frontier = np.unique(targets[indegree[targets] == 0])
        stuck = np.flatnonzero(~reached)
        raise ValueError(
            f"down has a cycle: {stuck.size} of {n} cells never drain off the grid "
            f"(first stuck cell: flat index {int(stuck[0])}, which drains to {int(d[stuck[0]])})"
        )
    order, bounds = found
    levels: list[IntArray] = np.split(order, bounds[1:-1])
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
    acc = np.array(_flat_float(weights, n, "weights"), dtype=np.float64, copy=True)
    passed = None if transfer is None else np.ascontiguousarray(_flat_float(transfer, n, "transfer"))
    compiled.accumulate_along(_order(levels), d, acc, passed)
    return acc


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
    p: FloatArray = compiled.product_along(
        _order(levels), d, np.ascontiguousarray(f), np.ascontiguousarray(s)
    )
    return p


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
    first: IntArray = compiled.first_along(_order(levels), d, np.ascontiguousarray(m))
    return first


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
    dist: FloatArray = compiled.sum_along(
        _order(levels), d, np.ascontiguousarray(steps), np.ascontiguousarray(s)
    )
    return dist


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
    reached = first >= 0
    np.take(position, first, out=first, mode="wrap")  # in place: no grid-sized copies
    first[~reached] = -1
    return first


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
    order: IntArray = compiled.strahler_along(_order(levels), d, np.ascontiguousarray(river))
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
