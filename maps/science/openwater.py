"""Open water at the grid's edge (the sea, a lake the edge cuts): found on the DEM and taken out of it.

SRTM and most DEMs hold the sea at 0 m, not nodata. Left as land, a flat sea at the grid's edge is
routed like any flat (towards its nearest outlet, the edge), rivers defined by upstream area run on
across it, and an outlet given at a river mouth may snap into it. The rule here marks such water,
and the run modes make it nodata before the DEM is conditioned: flow into it leaves the grid, the
load of a river reaching the coast is exported at its mouth
(:func:`plastic_hotspots.maps.science.model.network_exits`).

**The rule.** Two 8-neighbours with data are on one *flat* when their elevations differ by at most
:data:`FLAT_TOLERANCE_M`; a flat is a group of cells joined so (a chain of such steps). A flat is
*open water* when all of these hold:

1. it touches the grid's edge or nodata (one of its cells has an off-grid or nodata neighbour);
2. at least :data:`MIN_OPEN_WATER_CELLS` of its cells are *inner*: all eight of their neighbours have
   data and lie on the flat. A few equal cells, or a flat one or two cells wide (the lowest row of a
   plane sloping to the edge, a road along it), are no body of water;
3. its level is the sea's, or it is a floor: every cell of it lies at or below ``sea_level_m``
   (plus the tolerance), **or** no cell next to it lies lower than it (by more than the tolerance).

Clause 3 keeps a flat plateau that the edge cuts, above lower land beside it, on land: water would
run off it, it does not hold any. Its first half keeps the sea at 0 m open water even where a few
cells beside the coast are a little below 0 m (radar noise, a lagoon, the resampling of both). A flat
that does not touch the edge or nodata (an inland lake, a filled depression) is never open water:
the model's depression fill drains it through its spill point, and nothing entering it is lost.

Every clause is a fixpoint of a rule on a cell and its eight neighbours, or a sum over the cells of a
flat, so the same cells come out whether the grid is solved whole (:func:`open_water`) or tile by
tile (:mod:`plastic_hotspots.maps.large.openwater`): each flat takes the least flat index among its
cells that touch the edge or nodata as its label (:func:`window_labels`, a relaxation over tiles in
the large mode), and the clauses are then checked per label (:func:`flat_summary`,
:func:`open_water_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels.compiled import flat_labels

__all__ = [
    "FLAT_TOLERANCE_M",
    "MIN_OPEN_WATER_CELLS",
    "NO_LABEL",
    "FlatSummary",
    "flat_summary",
    "mask_open_water",
    "merge_summaries",
    "open_water",
    "open_water_labels",
    "window_labels",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FLAT_TOLERANCE_M = 1e-3
"""Two neighbours whose elevations differ by at most this many metres are on one flat."""
MIN_OPEN_WATER_CELLS = 9
"""A flat at the edge with fewer inner cells than this is land (the least open water holds a 5 x 5 block)."""
NO_LABEL = int(np.iinfo(np.int64).max)
"""The label of a cell on no flat that touches the edge or nodata."""

_STEPS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def window_labels(padded: FloatArray, halo_labels: IntArray, origin: tuple[int, int], cols: int) -> IntArray:
    """Label every cell of a window with its flat's least edge-touching flat index (or :data:`NO_LABEL`).

    A cell touches the edge when one of its eight neighbours in ``padded`` is NaN (off the grid or
    nodata); it starts with its own flat index in the grid. Each flat then takes the least label of
    its cells and of the halo cells on it (:func:`plastic_hotspots.maps.kernels.compiled.flat_labels`).

    Args:
        padded: Elevations of the window inside a one-cell halo, ``(h + 2, w + 2)``; NaN off the grid
            and on nodata.
        halo_labels: Labels of the halo cells, same shape (the inside is ignored); :data:`NO_LABEL`
            where none is known.
        origin: ``(row, col)`` of the window's first cell in the grid.
        cols: Columns of the grid.

    Returns:
        int64 labels, ``(h, w)``.
    """
    z = np.asarray(padded, dtype=np.float64)
    h, w = z.shape[0] - 2, z.shape[1] - 2
    nodata = ~np.isfinite(z)
    touches = np.zeros((h, w), dtype=np.bool_)
    for dr, dc in _STEPS:
        touches |= nodata[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
    touches &= ~nodata[1:-1, 1:-1]
    start = np.array(halo_labels, dtype=np.int64, copy=True)
    rows = np.arange(origin[0], origin[0] + h, dtype=np.int64)[:, None]
    index = rows * cols + np.arange(origin[1], origin[1] + w, dtype=np.int64)[None, :]
    start[1:-1, 1:-1] = np.where(touches, index, NO_LABEL)
    return flat_labels(z, start, FLAT_TOLERANCE_M, NO_LABEL)


@dataclass(frozen=True, slots=True, eq=False)
class FlatSummary:
    """What the rule needs of each labelled flat of a window (or of the grid, once merged).

    Attributes:
        labels: The flats' labels, ascending.
        cells: Cells of each flat.
        inner: Cells of each flat whose eight neighbours all have data and lie on it.
        highest: Highest elevation on each flat, metres.
        lower_beside: Whether a cell next to the flat lies lower than it (by more than the tolerance).
    """

    labels: IntArray
    cells: IntArray
    inner: IntArray
    highest: FloatArray
    lower_beside: BoolArray


def flat_summary(padded: FloatArray, labels: IntArray) -> FlatSummary:
    """Cells, inner cells, highest elevation and lower neighbours of each labelled flat of a window.

    Args:
        padded: Elevations of the window inside its one-cell halo (NaN off the grid and on nodata).
        labels: The window's labels (:func:`window_labels`).

    Returns:
        One entry per label other than :data:`NO_LABEL`.
    """
    z = np.asarray(padded, dtype=np.float64)
    _h, _w = labels.shape
    rr, cc = np.nonzero(labels != NO_LABEL)
    here = z[rr + 1, cc + 1]
    lower = np.zeros(rr.size, dtype=np.bool_)
    inner = np.ones(rr.size, dtype=np.bool_)
    for dr, dc in _STEPS:
        beside = z[rr + 1 + dr, cc + 1 + dc]
        lower |= beside < here - FLAT_TOLERANCE_M  # NaN compares False
        inner &= np.abs(beside - here) <= FLAT_TOLERANCE_M
    found, inverse, cells = np.unique(labels[rr, cc], return_inverse=True, return_counts=True)
    highest = np.full(found.size, -np.inf)
    np.maximum.at(highest, inverse, here)
    lower_beside = np.bincount(inverse, weights=lower.astype(np.float64), minlength=found.size) > 0
    inside = np.bincount(inverse, weights=inner.astype(np.float64), minlength=found.size)
    return FlatSummary(
        found.astype(np.int64), cells.astype(np.int64), inside.astype(np.int64), highest, lower_beside
    )


def merge_summaries(parts: list[FlatSummary]) -> FlatSummary:
    """One summary of the flats of several windows (a flat may span many)."""
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return FlatSummary(empty, empty, empty, np.zeros(0), np.zeros(0, dtype=np.bool_))
    labels = np.concatenate([p.labels for p in parts])
    found, inverse = np.unique(labels, return_inverse=True)
    cells = np.bincount(inverse, weights=np.concatenate([p.cells for p in parts]), minlength=found.size)
    inner = np.bincount(inverse, weights=np.concatenate([p.inner for p in parts]), minlength=found.size)
    highest = np.full(found.size, -np.inf)
    np.maximum.at(highest, inverse, np.concatenate([p.highest for p in parts]))
    lower = np.bincount(
        inverse,
        weights=np.concatenate([p.lower_beside for p in parts]).astype(np.float64),
        minlength=found.size,
    )
    return FlatSummary(
        found.astype(np.int64), cells.astype(np.int64), inner.astype(np.int64), highest, lower > 0
    )


def open_water_labels(summary: FlatSummary, sea_level_m: float) -> IntArray:
    """The labels of the flats that are open water (the rule of the module docstring, clauses 2 and 3).

    Every labelled flat touches the edge or nodata (clause 1).
    """
    big = summary.inner >= MIN_OPEN_WATER_CELLS
    sea = summary.highest <= float(sea_level_m) + FLAT_TOLERANCE_M
    floor = ~summary.lower_beside
    keep: IntArray = summary.labels[big & (sea | floor)]
    return keep


def open_water(dem: FloatArray, sea_level_m: float) -> BoolArray:
    """The open water of a DEM held in memory (the rule of the module docstring).

    Args:
        dem: Elevations in metres, ``(rows, cols)``; NaN is nodata.
        sea_level_m: The sea's level in the DEM, metres (0 for SRTM and most DEMs).

    Returns:
        A boolean mask of the DEM's shape: True on open water.
    """
    z = np.asarray(dem, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"dem must be a 2-D raster (rows, cols), got an array of shape {z.shape}")
    padded = np.pad(z, 1, constant_values=np.nan)
    labels = window_labels(padded, np.full(padded.shape, NO_LABEL, dtype=np.int64), (0, 0), z.shape[1])
    keep = open_water_labels(flat_summary(padded, labels), sea_level_m)
    del padded
    mask: BoolArray = np.isin(labels, keep)
    return mask


def mask_open_water(dem: FloatArray, sea_level_m: float | None) -> FloatArray:
    """The DEM with its open water made nodata (NaN), in place; unchanged when ``sea_level_m`` is None.

    Both run modes apply this rule to the DEM as it is read, before anything else sees it (the large
    mode through :func:`plastic_hotspots.maps.large.openwater.mask_open_water_tiled`).

    Args:
        dem: Elevations in metres, NaN for nodata; changed in place.
        sea_level_m: The sea's level in metres (``HotspotParams.sea_level_m``), or None to keep every
            cell.

    Returns:
        ``dem`` itself.
    """
    if sea_level_m is not None:
        dem[open_water(dem, sea_level_m)] = np.nan
    return dem
