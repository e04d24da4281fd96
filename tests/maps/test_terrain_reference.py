"""The fast terrain and model paths give, bit for bit, what plain reference implementations give.

The references are the straightforward versions (the depression fill and the flat distances as plain
fixpoint iterations, per-direction D8 with ``np.where``, sweeps with ``np.where`` per level, a full
sort for the peaks), kept here as oracles.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from plastic_hotspots.maps.science import model, terrain

STEPS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def neighbours(padded: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """The neighbour in direction ``(dr, dc)`` of every inner cell of a padded array."""
    rows, cols = padded.shape[0] - 2, padded.shape[1] - 2
    return padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]


def reference_fill(dem: np.ndarray) -> np.ndarray:
    """The greatest solution of ``F(c) = max(z(c), min over the 8 neighbours of F(n))``, by iteration.

    Starts from ``+inf`` on every valid cell; neighbours off the grid or nodata count as ``-inf``.
    Each sweep can only lower ``F``, and ``F`` only takes the DEM's values, so it ends.
    """
    nodata = ~np.isfinite(dem)
    padded = np.full((dem.shape[0] + 2, dem.shape[1] + 2), -np.inf)
    padded[1:-1, 1:-1] = np.where(nodata, -np.inf, np.inf)
    while True:
        lowest = np.min([neighbours(padded, dr, dc) for dr, dc in STEPS], axis=0)
        new = np.where(nodata, -np.inf, np.maximum(dem, lowest))
        if np.array_equal(new, padded[1:-1, 1:-1]):
            break
        padded[1:-1, 1:-1] = new
    return np.where(nodata, np.nan, new)


def reference_flat_distance(filled: np.ndarray) -> np.ndarray:
    """Flat distances by relaxation, cell by cell, until nothing changes.

    0 on outlets (a valid cell with a strictly lower valid neighbour, or a neighbour off the grid or
    nodata), -1 on nodata, and on the other cells the least ``D(n) + 1`` over the neighbours ``n``
    of the same filled level.
    """
    rows, cols = filled.shape
    valid = np.isfinite(filled)
    unknown = np.iinfo(np.int64).max
    dist = np.full((rows, cols), unknown, dtype=np.int64)
    dist[~valid] = -1
    flats = []
    for r in range(rows):
        for c in range(cols):
            if not valid[r, c]:
                continue
            around = [(r + dr, c + dc) for dr, dc in STEPS]
            if any(
                not (0 <= rr < rows and 0 <= cc < cols) or not valid[rr, cc] or filled[rr, cc] < filled[r, c]
                for rr, cc in around
            ):
                dist[r, c] = 0
            else:
                flats.append((r, c, around))
    changed = True
    while changed:
        changed = False
        for r, c, around in flats:
            best = min(
                (int(dist[rr, cc]) + 1 for rr, cc in around if filled[rr, cc] == filled[r, c]),
                default=unknown,
            )
            if best < dist[r, c]:
                dist[r, c] = best
                changed = True
    assert np.all(dist < unknown), "a flat with no outlet: the fill is not a fill"
    return dist


def reference_down(filled: np.ndarray, distance: np.ndarray, cell_size: float) -> np.ndarray:
    """Steepest descent (:func:`reference_d8`), and on flats the first neighbour one step nearer."""
    rows, cols = filled.shape
    down = reference_d8(filled, cell_size)
    for r in range(rows):
        for c in range(cols):
            if distance[r, c] <= 0:
                continue
            assert down[r * cols + c] == -1, "a flat cell has a lower neighbour"
            for dr, dc in STEPS:
                rr, cc = r + dr, c + dc
                if filled[rr, cc] == filled[r, c] and distance[rr, cc] == distance[r, c] - 1:
                    down[r * cols + c] = rr * cols + cc
                    break
    return down


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


rounded = st.one_of(st.integers(0, 4).map(float), st.just(np.nan))  # integer DEMs: many flats


def assert_conditioned_like_the_references(dem: np.ndarray, cell_size: float) -> terrain.Conditioned:
    conditioned = terrain.condition(dem, cell_size)
    filled = reference_fill(dem)
    np.testing.assert_array_equal(conditioned.filled, filled)
    distance = reference_flat_distance(filled)
    assert conditioned.flat_distance.dtype == np.int32
    np.testing.assert_array_equal(conditioned.flat_distance, distance)
    assert conditioned.down.dtype == np.int64
    np.testing.assert_array_equal(conditioned.down, reference_down(filled, distance, cell_size))
    return conditioned


@settings(max_examples=200, deadline=None)
@given(
    dem=st.one_of(
        hnp.arrays(np.float64, shapes, elements=elevations),
        hnp.arrays(np.float64, shapes, elements=rounded),
    ),
    cell_size=st.sampled_from([1.0, 30.0, 0.7]),
)
def test_condition_is_the_fixpoint_of_fill_flat_distance_and_d8_bit_for_bit(
    dem: np.ndarray, cell_size: float
) -> None:
    assert_conditioned_like_the_references(dem, cell_size)


def test_condition_of_a_rounded_noisy_dem_is_the_fixpoint() -> None:
    rng = np.random.default_rng(7)
    dem = np.round(np.cumsum(rng.normal(0.2, 1.0, (120, 90)), axis=0) + rng.normal(0, 2, (120, 90)))
    dem[rng.random(dem.shape) < 0.02] = np.nan
    conditioned = assert_conditioned_like_the_references(dem, 30.0)
    assert conditioned.flat_distance.max() >= 3  # long flats, not only one-cell pits


@settings(max_examples=200, deadline=None)
@given(
    dem=hnp.arrays(np.float64, shapes, elements=elevations),
    cell_size=st.sampled_from([1.0, 30.0, 0.7]),
    data=st.data(),
)
def test_routing_and_sweeps_match_the_references(
    dem: np.ndarray, cell_size: float, data: st.DataObject
) -> None:
    down = terrain.condition(dem, cell_size).down
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
    # The 0 below the centre drains into the nodata cell under it, so nothing is filled.
    dem = np.array([[1.0, 1.0, 1.0], [1.0, 5e-324, 1.0], [1.0, 0.0, 1.0], [1.0, np.nan, 1.0]])
    conditioned = terrain.condition(dem, 30.0)
    np.testing.assert_array_equal(conditioned.filled, dem)
    np.testing.assert_array_equal(conditioned.down, reference_d8(dem, 30.0))
    assert conditioned.down[4] == 7


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
