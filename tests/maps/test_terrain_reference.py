"""The fast terrain and model paths give, bit for bit, what plain reference implementations give.

The references are the straightforward versions (a heap Priority-Flood, per-direction D8 with
``np.where``, sweeps with ``np.where`` per level, a full sort for the peaks), kept here as oracles.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maps import model, terrain

STEPS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def reference_fill(dem: np.ndarray, epsilon: float = 1e-6) -> np.ndarray:
    """Priority-Flood + epsilon with a binary heap and a pit queue (Barnes et al. 2014)."""
    nodata = ~np.isfinite(dem)
    rows, cols = dem.shape
    width = cols + 2
    blocked = np.ones((rows + 2, cols + 2), dtype=bool)
    blocked[1:-1, 1:-1] = nodata
    z = np.zeros((rows + 2, cols + 2))
    z[1:-1, 1:-1] = np.where(nodata, 0.0, dem)
    zf = z.ravel().tolist()
    closed = blocked.ravel().tolist()
    offsets = [dr * width + dc for dr, dc in STEPS]
    heap = []
    for i in range(len(zf)):
        if not closed[i] and any(blocked.ravel()[i + off] for off in offsets):
            heap.append((zf[i], i))
            closed[i] = True
    heapq.heapify(heap)
    pit: deque[int] = deque()
    while pit or heap:
        if pit:
            c = pit.popleft()
            zc = zf[c]
        else:
            zc, c = heapq.heappop(heap)
        raised = zc + epsilon
        if raised <= zc:
            raised = math.nextafter(zc, math.inf)
        for off in offsets:
            n = c + off
            if closed[n]:
                continue
            closed[n] = True
            if zf[n] <= zc:
                zf[n] = raised
                pit.append(n)
            else:
                heapq.heappush(heap, (zf[n], n))
    out = np.array(zf).reshape(rows + 2, cols + 2)[1:-1, 1:-1]
    out[nodata] = np.nan
    return out


def reference_d8(filled: np.ndarray, cell_size: float) -> np.ndarray:
    nodata = ~np.isfinite(filled)
    rows, cols = filled.shape
    padded = np.full((rows + 2, cols + 2), np.inf)
    padded[1:-1, 1:-1] = np.where(nodata, np.inf, filled)
    centre = np.where(nodata, -np.inf, filled)
    best = np.full((rows, cols), -np.inf)
    best_dir = np.full((rows, cols), -1)
    for k, (dr, dc) in enumerate(STEPS):
        neighbour = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        lower = neighbour < centre
        drop = np.where(lower, centre - neighbour, -np.inf) / (cell_size * (math.sqrt(2) if dr and dc else 1))
        better = drop > best
        best = np.where(better, drop, best)
        best_dir = np.where(better, k, best_dir)
    r, c = np.indices((rows, cols))
    steps = np.array(STEPS)
    k = np.where(best_dir >= 0, best_dir, 0)
    return np.where(best_dir >= 0, (r + steps[k, 0]) * cols + c + steps[k, 1], -1).ravel()


def reference_step_length(down: np.ndarray, cols: int, cell_size: float) -> np.ndarray:
    idx = np.arange(down.size)
    target = np.where(down >= 0, down, idx)
    diagonal = (target // cols != idx // cols) & (target % cols != idx % cols)
    return np.where(diagonal, cell_size * math.sqrt(2.0), cell_size)


def reference_levels(down: np.ndarray) -> list[np.ndarray]:
    indegree = np.bincount(down[down >= 0], minlength=down.size)
    frontier = np.flatnonzero(indegree == 0)
    levels = []
    while frontier.size:
        levels.append(frontier)
        targets = down[frontier]
        targets = targets[targets >= 0]
        cells, counts = np.unique(targets, return_counts=True)
        indegree[cells] -= counts
        frontier = cells[indegree[cells] == 0]
    return levels


def reference_sweeps(
    down: np.ndarray, levels: list[np.ndarray], factor: np.ndarray, stop: np.ndarray, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    n = down.size
    acc = factor.copy()
    for level in levels:
        keep = down[level] >= 0
        np.add.at(acc, down[level][keep], acc[level[keep]] * factor[level[keep]])
    p = np.zeros(n)
    first = np.full(n, -1)
    dist = np.full(n, np.inf)
    for level in reversed(levels):
        t = down[level]
        has = t >= 0
        safe = np.where(has, t, 0)
        p[level] = np.where(stop[level], 1.0, np.where(has, factor[level] * p[safe], 0.0))
        first[level] = np.where(stop[level], level, np.where(has, first[safe], -1))
        dist[level] = np.where(stop[level], 0.0, np.where(has, lengths[level] + dist[safe], np.inf))
    return {"accumulate": acc, "product": p, "first": first, "distance": dist}


def reference_slope(dem: np.ndarray, cell_size: float) -> np.ndarray:
    nodata = ~np.isfinite(dem)
    rows, cols = dem.shape
    padded = np.pad(dem, 1, mode="edge")
    centre = np.where(nodata, 0.0, dem)

    def w(dr: int, dc: int) -> np.ndarray:
        v = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        return np.where(np.isfinite(v), v, centre)

    a, b, c, d, f, g, h, i = w(-1, -1), w(-1, 0), w(-1, 1), w(0, -1), w(0, 1), w(1, -1), w(1, 0), w(1, 1)
    dx = ((c + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * cell_size)
    dy = ((a + 2.0 * b + c) - (g + 2.0 * h + i)) / (8.0 * cell_size)
    out = np.hypot(dx, dy)
    out[nodata] = np.nan
    return out


def reference_peaks(values: np.ndarray, top_n: int, sep: int) -> list[tuple[int, int]]:
    work = np.where(np.isfinite(values), values, 0.0)
    cols = work.shape[1]
    order = np.argsort(work, axis=None, kind="stable")[::-1]
    taken = np.zeros(work.shape, dtype=bool)
    picked: list[tuple[int, int]] = []
    for flat in order.tolist():
        if len(picked) >= top_n:
            break
        r, c = divmod(flat, cols)
        if work[r, c] <= 0:
            break
        if taken[r, c]:
            continue
        picked.append((r, c))
        taken[max(0, r - sep) : r + sep + 1, max(0, c - sep) : c + sep + 1] = True
    return picked


shapes = st.tuples(st.integers(1, 14), st.integers(1, 14))
elevations = st.one_of(
    st.floats(-100.0, 9000.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, 2.0, 3.0]),  # flats and flat-bottomed pits
    st.just(np.nan),
)


@settings(max_examples=300, deadline=None)
@given(dem=hnp.arrays(np.float64, shapes, elements=elevations), eps=st.sampled_from([1e-6, 0.0, 0.5]))
def test_fill_is_the_heap_priority_flood_bit_for_bit(dem: np.ndarray, eps: float) -> None:
    np.testing.assert_array_equal(terrain.fill_depressions(dem, epsilon=eps), reference_fill(dem, eps))


def test_fill_of_a_rounded_noisy_dem_is_the_heap_priority_flood() -> None:
    rng = np.random.default_rng(7)
    dem = np.round(np.cumsum(rng.normal(0.2, 1.0, (120, 90)), axis=0) + rng.normal(0, 2, (120, 90)))
    dem[rng.random(dem.shape) < 0.02] = np.nan
    np.testing.assert_array_equal(terrain.fill_depressions(dem), reference_fill(dem))


@settings(max_examples=200, deadline=None)
@given(
    dem=hnp.arrays(np.float64, shapes, elements=elevations),
    cell_size=st.sampled_from([1.0, 30.0, 0.7]),
    data=st.data(),
)
def test_routing_and_sweeps_match_the_references(
    dem: np.ndarray, cell_size: float, data: st.DataObject
) -> None:
    filled = terrain.fill_depressions(dem)
    down = terrain.d8_downstream(filled, cell_size)
    np.testing.assert_array_equal(down, reference_d8(filled, cell_size))
    np.testing.assert_array_equal(
        terrain.step_length(down, dem.shape, cell_size), reference_step_length(down, dem.shape[1], cell_size)
    )
    levels = terrain.flow_levels(down)
    ref_levels = reference_levels(down)
    assert len(levels) == len(ref_levels)
    for got, want in zip(levels, ref_levels, strict=True):
        np.testing.assert_array_equal(got, want)
    n = down.size
    factor = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    stop = data.draw(hnp.arrays(np.bool_, n, elements=st.booleans()))
    lengths = terrain.step_length(down, dem.shape, cell_size)
    want = reference_sweeps(down, levels, factor, stop, lengths)
    np.testing.assert_array_equal(terrain.accumulate(down, levels, factor, factor), want["accumulate"])
    np.testing.assert_array_equal(terrain.downstream_product(down, levels, factor, stop), want["product"])
    np.testing.assert_array_equal(terrain.first_downstream(down, levels, stop), want["first"])
    np.testing.assert_array_equal(terrain.downstream_distance(down, levels, lengths, stop), want["distance"])
    np.testing.assert_array_equal(terrain.slope(dem, cell_size), reference_slope(dem, cell_size))


def test_d8_counts_a_drop_that_underflows_to_zero_per_metre() -> None:
    dem = np.array([[1.0, 1.0, 1.0], [1.0, 5e-324, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(terrain.d8_downstream(dem, 30.0), reference_d8(dem, 30.0))
    assert terrain.d8_downstream(dem, 30.0)[4] == 7


@settings(max_examples=200, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(1, 30)),
        elements=st.one_of(st.floats(-5.0, 100.0, allow_nan=False), st.sampled_from([0.0, 1.0, np.nan])),
    ),
    top_n=st.integers(0, 12),
    sep=st.integers(0, 4),
)
def test_pick_peaks_matches_a_full_stable_sort(values: np.ndarray, top_n: int, sep: int) -> None:
    assert model.pick_peaks(values, top_n, sep) == reference_peaks(values, top_n, sep)


def test_pick_peaks_takes_equal_values_from_the_highest_flat_index() -> None:
    values = np.zeros((3, 5))
    values[0, 1] = values[2, 3] = 4.0
    assert model.pick_peaks(values, 1, 0) == [(2, 3)]
    assert model.pick_peaks(values, 5, 0) == [(2, 3), (0, 1)]
