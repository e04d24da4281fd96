"""Ranked hotspots of rasters stored tile by tile, equal to the whole-grid ranking.

* :func:`pick_peaks_tiled` is :func:`plastic_hotspots.maps.science.model.pick_peaks` (greedy non-maximum
suppression over
  the whole grid). The whole-grid search looks only at the largest ``budget`` positive cells (and any
  equal to the smallest of them): each tile sends its own largest ``budget`` (and ties), which hold
  the grid's, so the merged candidates are the whole-grid candidates, taken in the same order
  (decreasing value, then decreasing flat index). A candidate is passed over when a cell already
  picked lies within ``separation`` cells in both directions, wherever the tiles' edges are: the
  suppression needs no halo. The search widens as the whole-grid one does.
* :func:`medians_tiled` gives :func:`numpy.median` of values spread over tiles, exactly: a radix
  selection on the values' bits (a histogram of 16 bits per pass over the tiles) until the cells
  left fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.large.mapper import LazyTasks, Mapper, serial_map
from plastic_hotspots.maps.large.store import TiledRaster

__all__ = ["medians_tiled", "pick_peaks_tiled", "sortable_keys"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
KeyArray = npt.NDArray[np.uint64]

DIGIT_BITS = 16
COLLECT_CELLS = 1 << 20  # cells left to select from that are gathered in memory and sorted


# --------------------------------------------------------------------------------------------------
# Peaks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class CandidateTask:
    """The largest ``budget`` positive cells of one tile (and any equal to the smallest of them)."""

    values: TiledRaster
    ti: int
    tj: int
    budget: int


@dataclass(frozen=True, slots=True, eq=False)
class Candidates:
    """A tile's candidates: flat (grid) indices, their values, and the tile's positive cells."""

    cells: IntArray
    values: FloatArray
    positive: int


def candidate_tile(task: CandidateTask) -> Candidates:
    """Run a :class:`CandidateTask`."""
    lay = task.values.layout
    r0, _, c0, c1 = lay.window(task.ti, task.tj)
    raw = task.values.read(task.ti, task.tj)
    flat = np.where(np.isfinite(raw), raw, 0.0).astype(np.float64, copy=False).ravel()
    positive = np.flatnonzero(flat > 0)
    chosen = positive
    if task.budget < positive.size:
        kth = np.partition(flat[positive], positive.size - task.budget)[positive.size - task.budget]
        chosen = positive[flat[positive] >= kth]
    rr, cc = np.divmod(chosen, c1 - c0)
    cells = ((rr + r0) * lay.cols + (cc + c0)).astype(np.int64)
    return Candidates(cells=cells, values=flat[chosen], positive=int(positive.size))


def pick_peaks_tiled(
    values: TiledRaster, top_n: int, separation_cells: int, *, mapper: Mapper | None = None
) -> list[tuple[int, int]]:
    """The model's peak picking on a tiled raster: the same cells, in the same order.

    :func:`plastic_hotspots.maps.science.model.pick_peaks`, tile by tile.

    Args:
        values: The raster (NaN counts as 0; only positive cells are picked).
        top_n: How many peaks.
        separation_cells: Two peaks are more than this many cells apart in row or column.
        mapper: Runs the tile tasks (default :func:`~plastic_hotspots.maps.large.mapper.serial_map`).

    Returns:
        ``(row, col)`` of each peak, largest first.
    """
    run = mapper or serial_map
    lay = values.layout
    tiles = list(lay.tiles())
    budget = max(top_n, 1) * (2 * separation_cells + 1) ** 2
    while True:
        cells: list[IntArray] = []
        found: list[FloatArray] = []
        positive = 0
        parts: dict[int, Candidates] = {}
        tasks = LazyTasks(len(tiles), _candidate_maker(values, tiles, budget))
        for index, part in run(candidate_tile, tasks):
            parts[index] = part
        for index in sorted(parts):
            cells.append(parts[index].cells)
            found.append(parts[index].values)
            positive += parts[index].positive
        all_cells = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
        all_values = np.concatenate(found) if found else np.zeros(0)
        if budget < positive:
            kth = np.partition(all_values, all_values.size - budget)[all_values.size - budget]
            keep = all_values >= kth
            all_cells, all_values = all_cells[keep], all_values[keep]
        picked = _suppress(all_cells, all_values, lay.cols, top_n, separation_cells)
        if len(picked) >= top_n or all_cells.size == positive:
            return picked
        budget *= 4


def _candidate_maker(
    values: TiledRaster, tiles: list[tuple[int, int]], budget: int
) -> Callable[[int], CandidateTask]:
    def make(i: int) -> CandidateTask:
        return CandidateTask(values, tiles[i][0], tiles[i][1], budget)

    return make


def _suppress(
    cells: IntArray, values: FloatArray, cols: int, top_n: int, separation: int
) -> list[tuple[int, int]]:
    """Greedy non-maximum suppression over candidates (decreasing value, then decreasing index)."""
    order = np.lexsort((cells, values))[::-1]
    rows_picked: list[int] = []
    cols_picked: list[int] = []
    for index in cells[order].tolist():
        if len(rows_picked) >= top_n:
            break
        r, c = divmod(int(index), cols)
        if rows_picked:
            near = (np.abs(np.asarray(rows_picked) - r) <= separation) & (
                np.abs(np.asarray(cols_picked) - c) <= separation
            )
            if near.any():
                continue
        rows_picked.append(r)
        cols_picked.append(c)
    return list(zip(rows_picked, cols_picked, strict=True))


# --------------------------------------------------------------------------------------------------
# Exact medians
# --------------------------------------------------------------------------------------------------


def sortable_keys(values: FloatArray) -> KeyArray:
    """Unsigned keys that sort as the (non-NaN) float64 values do."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(np.bool_)
    keys: KeyArray = np.where(negative, ~bits, bits | np.uint64(1 << 63)).astype(np.uint64)
    return keys


def _from_key(key: int) -> float:
    k = np.array([key], dtype=np.uint64)
    bits = np.where(k >> np.uint64(63) == 1, k & np.uint64((1 << 63) - 1), ~k)
    return float(bits.view(np.float64)[0])


@dataclass
class _Selection:
    """The search for the ``rank``-th smallest value (0-based) of one series."""

    series: int
    rank: int
    prefix: int = 0
    bits: int = 0  # how many leading bits of the key are fixed
    left: int = 0  # cells whose key starts with the prefix
    value: float | None = None


def medians_tiled(chunks: Callable[[], Iterable[Sequence[FloatArray]]], series: int) -> list[float | None]:
    """:func:`numpy.median` of each of ``series`` series of values that come in chunks, exactly.

    Args:
        chunks: Called once per pass; yields, per chunk (a tile), one 1-D array of values per series.
            Values must not be NaN.
        series: How many series.

    Returns:
        Each series' median; None for an empty series.
    """
    first = [np.zeros(1 << DIGIT_BITS, dtype=np.int64) for _ in range(series)]
    for parts in chunks():
        for s in range(series):
            top = sortable_keys(parts[s]) >> np.uint64(64 - DIGIT_BITS)
            first[s] += np.bincount(top.astype(np.int64), minlength=1 << DIGIT_BITS)
    selections: list[_Selection] = []
    for s in range(series):
        n = int(first[s].sum())
        for rank in ([n // 2] if n % 2 else [n // 2 - 1, n // 2]) if n else []:
            selection = _Selection(s, rank)
            _narrow(selection, first[s])
            selections.append(selection)
    while any(sel.value is None for sel in selections):
        _select_pass(chunks, [sel for sel in selections if sel.value is None])
    out: list[float | None] = []
    for s in range(series):
        found = [sel.value for sel in selections if sel.series == s]
        if not found:
            out.append(None)
        else:
            out.append(float(np.mean(np.array(found, dtype=np.float64))))
    return out


def _select_pass(chunks: Callable[[], Iterable[Sequence[FloatArray]]], open_: list[_Selection]) -> None:
    """One pass over the chunks: gather the cells left, or a histogram of the next bits of their keys."""
    gathering = [sel.left <= COLLECT_CELLS or sel.bits + DIGIT_BITS > 64 for sel in open_]
    gathered: list[list[KeyArray]] = [[] for _ in open_]
    histograms = [np.zeros(1 << DIGIT_BITS, dtype=np.int64) for _ in open_]
    for parts in chunks():
        for i, sel in enumerate(open_):
            keys = sortable_keys(parts[sel.series])
            if sel.bits:
                keys = keys[(keys >> np.uint64(64 - sel.bits)) == np.uint64(sel.prefix)]
            if gathering[i]:
                gathered[i].append(keys)
            else:
                shift = np.uint64(64 - sel.bits - DIGIT_BITS)
                digit = ((keys >> shift) & np.uint64((1 << DIGIT_BITS) - 1)).astype(np.int64)
                histograms[i] += np.bincount(digit, minlength=1 << DIGIT_BITS)
    for i, sel in enumerate(open_):
        if gathering[i]:
            keys = np.sort(np.concatenate(gathered[i])) if gathered[i] else np.zeros(0, dtype=np.uint64)
            sel.value = _from_key(int(keys[sel.rank]))
            continue
        _narrow(sel, histograms[i])


def _narrow(sel: _Selection, histogram: IntArray) -> None:
    """Fix the next bits of the key sought from a histogram of the cells left."""
    below = np.cumsum(histogram)
    digit = int(np.searchsorted(below, sel.rank, side="right"))
    sel.rank -= int(below[digit - 1]) if digit else 0
    sel.prefix = (sel.prefix << DIGIT_BITS) | digit
    sel.bits += DIGIT_BITS
    sel.left = int(histogram[digit])
    if sel.bits == 64:
        sel.value = _from_key(sel.prefix)
