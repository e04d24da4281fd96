"""The compiled flood and flat search, and the window kernels built on them, against fixpoint iterations.

Each reference below iterates its rule over the whole window until nothing changes: slow, but obviously
the definition. The compiled code must give the same numbers, bit for bit, on small random windows whose
halo mixes cells that drain (NaN), cells not known yet (``+inf`` / unknown distance) and known values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from plastic_hotspots.maps.kernels import compiled
from plastic_hotspots.maps.kernels.compiled import _sorted_by_key, flat_distances, flood_levels
from plastic_hotspots.maps.kernels.windows import UNKNOWN_DISTANCE, fill_kernel, flat_distance_kernel

STEPS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))
UNKNOWN = UNKNOWN_DISTANCE


def shifted(padded: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """The neighbour in direction ``(dr, dc)`` of every inner cell of a padded array."""
    rows, cols = padded.shape[0] - 2, padded.shape[1] - 2
    return padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]


def pad(arr: np.ndarray, value: float) -> np.ndarray:
    out = np.full((arr.shape[0] + 2, arr.shape[1] + 2), value, dtype=arr.dtype)
    out[1:-1, 1:-1] = arr
    return out


# --------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------


def reference_fill(padded: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Greatest solution of ``F(c) = max(z(c), min over the 8 neighbours of F(n))``, halo fixed.

    Halo: NaN drains (``-inf``), ``+inf`` never drains, a finite value is that neighbour's ``F``.
    Inner non-finite cells are nodata (they drain); inner cells with a finite ``known`` value are
    fixed at it. The free cells start at ``+inf`` and only go down, through the DEM's values.
    """
    z = padded[1:-1, 1:-1]
    valid = np.isfinite(z)
    fixed = np.zeros(z.shape, dtype=bool) if known is None else valid & np.isfinite(known)
    free = valid & ~fixed
    f = np.where(np.isnan(padded), -np.inf, padded)
    inner = np.where(valid, np.inf, -np.inf)
    if known is not None:
        inner = np.where(fixed, known, inner)
    f[1:-1, 1:-1] = inner
    while True:
        lowest = np.min([shifted(f, dr, dc) for dr, dc in STEPS], axis=0)
        new = np.where(free, np.maximum(np.where(valid, z, -np.inf), lowest), f[1:-1, 1:-1])
        if np.array_equal(new, f[1:-1, 1:-1]):
            return np.where(valid, new, np.nan)
        f[1:-1, 1:-1] = new


def reference_flat_distance(padded_filled: np.ndarray, padded_distance: np.ndarray) -> np.ndarray:
    """Flat distances of the inner cells by relaxation, the halo's ``D`` fixed.

    0 on outlets (valid cells with a non-finite neighbour or a strictly lower one), -1 on nodata,
    and on flats the least ``D(n) + 1`` over known neighbours ``n`` of the same ``F``.
    """
    centre = padded_filled[1:-1, 1:-1]
    valid = np.isfinite(centre)
    outlet = np.zeros(centre.shape, dtype=bool)
    for dr, dc in STEPS:
        nb = shifted(padded_filled, dr, dc)
        outlet |= ~np.isfinite(nb) | (nb < centre)
    outlet &= valid
    flat = valid & ~outlet
    dist = padded_distance.astype(np.int64)
    dist[1:-1, 1:-1] = np.where(outlet, 0, UNKNOWN)
    while True:
        best = np.full(centre.shape, UNKNOWN, dtype=np.int64)
        for dr, dc in STEPS:
            nd = shifted(dist, dr, dc)
            same = shifted(padded_filled, dr, dc) == centre
            best = np.minimum(best, np.where(same & (nd < UNKNOWN), nd + 1, UNKNOWN))
        new = np.where(flat, np.minimum(dist[1:-1, 1:-1], best), dist[1:-1, 1:-1])
        if np.array_equal(new, dist[1:-1, 1:-1]):
            return np.where(valid, new, -1).astype(np.int32)
        dist[1:-1, 1:-1] = new


def reference_flood(cost: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``flood_levels`` by iteration: free cells take ``max(cost, lowest neighbour)`` from ``+inf``."""
    level = pad(np.where(free, np.inf, cost), np.inf)  # no neighbours off the array
    while True:
        lowest = np.min([shifted(level, dr, dc) for dr, dc in STEPS], axis=0)
        new = np.where(free, np.maximum(cost, lowest), cost)
        if np.array_equal(new, level[1:-1, 1:-1]):
            break
        level[1:-1, 1:-1] = new
    return new  # fixed cells keep their cost


def reference_unit_distances(
    dist: np.ndarray, level: np.ndarray, eligible: np.ndarray, unknown: int
) -> np.ndarray:
    """``flat_distances`` by relaxation: eligible cells take ``min(D, D(n) + 1)``, ``n`` known, same level."""
    d = pad(dist.astype(np.int64), unknown)
    lv = pad(level.astype(np.float64), np.nan)
    while True:
        best = d[1:-1, 1:-1].copy()
        for dr, dc in STEPS:
            nd = shifted(d, dr, dc)
            ok = eligible & (shifted(lv, dr, dc) == level) & (nd < unknown)
            best = np.where(ok, np.minimum(best, nd + 1), best)
        if np.array_equal(best, d[1:-1, 1:-1]):
            return best
        d[1:-1, 1:-1] = best


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

window_sides = st.integers(1, 7)
elevations = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0]),  # ties: flats, flat-bottomed pits, equal halo levels
    st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False),
)
inner_values = st.one_of(elevations, st.sampled_from([np.nan, np.inf, -np.inf]))  # non-finite: nodata
fill_halo_values = st.one_of(elevations, st.sampled_from([np.nan, np.inf]))  # drains, not known yet
filled_halo_values = st.one_of(elevations, st.just(np.nan))
halo_distances = st.one_of(st.integers(0, 8), st.sampled_from([UNKNOWN - 2, UNKNOWN - 1, UNKNOWN]))


@st.composite
def windows(draw: st.DrawFn, inner: st.SearchStrategy[float], halo: st.SearchStrategy[float]) -> np.ndarray:
    """A padded window ``(h + 2, w + 2)`` with the given inner and halo elements."""
    h, w = draw(window_sides), draw(window_sides)
    padded = draw(hnp.arrays(np.float64, (h + 2, w + 2), elements=halo))
    padded[1:-1, 1:-1] = draw(hnp.arrays(np.float64, (h, w), elements=inner))
    return padded


# --------------------------------------------------------------------------------------------------
# fill_kernel
# --------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(padded=windows(inner_values, fill_halo_values))
def test_fill_kernel_is_the_greatest_fixpoint_with_the_halo_fixed(padded: np.ndarray) -> None:
    filled = fill_kernel(padded)
    want = reference_fill(padded)
    assert filled.shape == (padded.shape[0] - 2, padded.shape[1] - 2)
    np.testing.assert_array_equal(filled, want)
    z = padded[1:-1, 1:-1]
    valid = np.isfinite(z)
    assert np.all(filled[valid] >= z[valid])
    assert np.isnan(filled[~valid]).all()


@settings(max_examples=100, deadline=None)
@given(padded=windows(inner_values, fill_halo_values), data=st.data())
def test_fill_kernel_keeps_known_cells_and_treats_them_as_halo(
    padded: np.ndarray, data: st.DataObject
) -> None:
    shape = (padded.shape[0] - 2, padded.shape[1] - 2)
    chosen = data.draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
    values = data.draw(hnp.arrays(np.float64, shape, elements=fill_halo_values))
    known = np.where(chosen, values, np.nan)  # NaN and +inf are not known: they are solved
    np.testing.assert_array_equal(fill_kernel(padded, known), reference_fill(padded, known))


@settings(max_examples=100, deadline=None)
@given(padded=windows(inner_values, fill_halo_values), data=st.data())
def test_fill_kernel_with_some_true_levels_known_gives_the_same_fill(
    padded: np.ndarray, data: st.DataObject
) -> None:
    truth = reference_fill(padded)
    chosen = data.draw(hnp.arrays(np.bool_, truth.shape, elements=st.booleans()))
    known = np.where(chosen, truth, np.nan)
    np.testing.assert_array_equal(fill_kernel(padded, known), truth)


def test_fill_kernel_fills_to_the_lowest_way_out_through_the_halo() -> None:
    # A 2 x 2 hollow; the halo is closed (+inf) except a known 4 to the east and a drain (NaN) at 7
    # m of rim to the south-west: the hollow fills to 4, the west cell above its rim stays put.
    padded = np.full((4, 5), np.inf)
    padded[1:3, 1:4] = [[9.0, 1.0, 2.0], [7.0, 0.0, 5.0]]
    padded[2, 4] = 4.0
    padded[3, 0] = np.nan
    filled = fill_kernel(padded)
    np.testing.assert_array_equal(filled, [[9.0, 4.0, 4.0], [7.0, 4.0, 5.0]])
    padded[2, 4] = np.inf  # no known way east: out over the 7 to the drain
    np.testing.assert_array_equal(fill_kernel(padded), [[9.0, 7.0, 7.0], [7.0, 7.0, 7.0]])
    padded[3, 0] = np.inf  # closed all round: nothing drains yet
    np.testing.assert_array_equal(fill_kernel(padded), np.full((2, 3), np.inf))


def test_fill_kernel_rejects_windows_and_known_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"padded must be a padded window .* got \(2, 5\)"):
        fill_kernel(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"known must have the window's shape \(2, 3\), got \(3, 2\)"):
        fill_kernel(np.zeros((4, 5)), np.zeros((3, 2)))


# --------------------------------------------------------------------------------------------------
# flat_distance_kernel
# --------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(padded_filled=windows(st.one_of(elevations, st.just(np.nan)), filled_halo_values), data=st.data())
def test_flat_distance_kernel_is_the_relaxation_with_the_halo_fixed(
    padded_filled: np.ndarray, data: st.DataObject
) -> None:
    # The inner distances are ignored: drawn at random here.
    padded_distance = data.draw(hnp.arrays(np.int64, padded_filled.shape, elements=halo_distances))
    got = flat_distance_kernel(padded_filled, padded_distance)
    assert got.dtype == np.int32
    want = reference_flat_distance(padded_filled, padded_distance)
    np.testing.assert_array_equal(got, want)
    valid = np.isfinite(padded_filled[1:-1, 1:-1])
    assert np.all(got[~valid] == -1)
    assert np.all((got[valid] >= 0) & (got[valid] <= UNKNOWN))


@settings(max_examples=100, deadline=None)
@given(padded_filled=windows(st.one_of(elevations, st.just(np.nan)), filled_halo_values), data=st.data())
def test_flat_distance_kernel_from_previous_distances_of_a_higher_halo(
    padded_filled: np.ndarray, data: st.DataObject
) -> None:
    first = data.draw(hnp.arrays(np.int64, padded_filled.shape, elements=halo_distances))
    second = data.draw(hnp.arrays(np.int64, padded_filled.shape, elements=halo_distances))
    higher, lower = np.maximum(first, second), np.minimum(first, second)  # halo distances only go down
    previous = flat_distance_kernel(padded_filled, higher)
    np.testing.assert_array_equal(previous, reference_flat_distance(padded_filled, higher))
    got = flat_distance_kernel(padded_filled, lower, previous)
    np.testing.assert_array_equal(got, reference_flat_distance(padded_filled, lower))
    np.testing.assert_array_equal(flat_distance_kernel(padded_filled, higher, previous), previous)


def test_flat_distance_kernel_counts_steps_to_the_outlet_or_a_known_halo_cell() -> None:
    # A 1 x 5 flat at 2 between walls; its east end sees a lower halo cell (an outlet), and a halo
    # cell of the same level to the north-west is 1 step from its own outlet.
    padded_filled = np.full((3, 7), 9.0)
    padded_filled[1, 1:6] = 2.0
    padded_filled[1, 6] = 1.0
    padded_filled[0, 0] = 2.0
    padded_distance = np.zeros(padded_filled.shape, dtype=np.int64)
    padded_distance[0, 0] = 1
    got = flat_distance_kernel(padded_filled, padded_distance)
    assert got.tolist() == [[2, 3, 2, 1, 0]]
    padded_distance[0, 0] = UNKNOWN  # not known yet: only the outlet counts
    assert flat_distance_kernel(padded_filled, padded_distance).tolist() == [[4, 3, 2, 1, 0]]
    padded_filled[1, 6] = 9.0  # no outlet at all: unknown
    assert flat_distance_kernel(padded_filled, padded_distance).tolist() == [[UNKNOWN] * 5]
    padded_distance[0, 0] = UNKNOWN - 2  # one step on is the last distance below unknown
    assert flat_distance_kernel(padded_filled, padded_distance).tolist() == [[UNKNOWN - 1] + [UNKNOWN] * 4]
    padded_distance[0, 0] = UNKNOWN - 1
    assert flat_distance_kernel(padded_filled, padded_distance).tolist() == [[UNKNOWN] * 5]
    padded_filled[1, 3] = np.nan  # a nodata cell: -1, and its neighbours are outlets
    assert flat_distance_kernel(padded_filled, padded_distance).tolist() == [[1, 0, -1, 0, 1]]


def test_flat_distance_kernel_rejects_mismatched_shapes() -> None:
    padded_filled = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"padded_distance must have the shape of padded_filled \(4, 5\)"):
        flat_distance_kernel(padded_filled, np.zeros((5, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"previous must have the window's shape \(2, 3\), got \(3, 3\)"):
        flat_distance_kernel(padded_filled, np.zeros((4, 5), dtype=np.int64), np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match=r"padded_filled must be a padded window .* got \(4,\)"):
        flat_distance_kernel(np.zeros(4), np.zeros(4, dtype=np.int64))


# --------------------------------------------------------------------------------------------------
# plastic_hotspots.maps.kernels.compiled directly
# --------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    cost=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 8)),
        elements=st.one_of(elevations, st.sampled_from([np.inf, -np.inf])),
    ),
    data=st.data(),
)
def test_flood_levels_are_the_minimax_levels_to_the_fixed_cells(
    cost: np.ndarray, data: st.DataObject
) -> None:
    free = data.draw(hnp.arrays(np.bool_, cost.shape, elements=st.booleans())) & np.isfinite(cost)
    np.testing.assert_array_equal(flood_levels(cost, free), reference_flood(cost, free))


@settings(max_examples=100, deadline=None)
@given(
    dist=hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 8), st.integers(1, 8)),
        elements=st.one_of(st.integers(0, 6), st.sampled_from([UNKNOWN - 1, UNKNOWN])),
    ),
    data=st.data(),
)
def test_flat_distances_are_the_unit_step_relaxation(dist: np.ndarray, data: st.DataObject) -> None:
    level = data.draw(
        hnp.arrays(np.float64, dist.shape, elements=st.one_of(st.sampled_from([0.0, 1.0]), st.just(np.nan)))
    )
    eligible = data.draw(hnp.arrays(np.bool_, dist.shape, elements=st.booleans()))
    want = reference_unit_distances(dist, level, eligible, UNKNOWN)
    flat_distances(dist, level, eligible, UNKNOWN)  # in place
    np.testing.assert_array_equal(dist, want)


def test_flood_levels_rejects_nan_and_mismatched_shapes() -> None:
    cost = np.array([[-np.inf, 1.0, np.nan]])
    with pytest.raises(ValueError, match="cost holds NaN: give -inf for cells that drain"):
        flood_levels(cost, np.array([[False, True, False]]))
    with pytest.raises(ValueError, match=r"one shape, got \(1, 3\) and \(3, 1\)"):
        flood_levels(np.zeros((1, 3)), np.zeros((3, 1), dtype=bool))


def test_flat_distances_rejects_other_than_a_c_contiguous_int64_array() -> None:
    level = np.zeros((3, 3))
    eligible = np.ones((3, 3), dtype=bool)
    for dist in (
        np.zeros((3, 3), dtype=np.int32),
        np.zeros((3, 3)),
        np.zeros((3, 6), dtype=np.int64)[:, ::2],
    ):
        with pytest.raises(ValueError, match="dist must be a C-contiguous int64 array"):
            flat_distances(dist, level, eligible, UNKNOWN)
    with pytest.raises(ValueError, match="must be 2-D arrays of one shape"):
        flat_distances(np.zeros((3, 2), dtype=np.int64), level, eligible, UNKNOWN)


@settings(max_examples=60, deadline=None)
@given(
    keys=hnp.arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([-np.inf, 0.0, 1.0, 2.5, 8848.0]),  # ties and whole metres
        ),
    )
)
def test_radix_order_is_a_stable_sort_of_the_keys(keys: np.ndarray) -> None:
    keys = keys + 0.0  # -0.0 -> 0.0: the radix order puts -0.0 first, argsort calls them equal
    cells = np.arange(keys.size, dtype=np.int64) * 3 + 7
    order = _sorted_by_key(cells, keys)
    expected = cells[np.argsort(keys, kind="stable")]
    np.testing.assert_array_equal(order, expected)


def test_radix_order_of_whole_metres_and_negative_elevations() -> None:
    rng = np.random.default_rng(5)
    keys = np.round(rng.normal(0.0, 3000.0, 20_000)) + 0.0  # below and above sea level, many ties
    keys[::97] = -np.inf
    cells = np.arange(keys.size, dtype=np.int64)
    np.testing.assert_array_equal(_sorted_by_key(cells, keys), np.argsort(keys, kind="stable"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_value_summary_is_nanmin_nanmax_and_a_sum(dtype: type) -> None:
    rng = np.random.default_rng(2)
    values = rng.gamma(0.5, 40.0, size=(30, 40)).astype(dtype)
    values[rng.random(values.shape) < 0.2] = np.nan
    lowest, highest, total = compiled.value_summary(values)
    assert lowest == np.nanmin(values)
    assert highest == np.nanmax(values)
    assert total == pytest.approx(float(np.nansum(values.astype(np.float64))), rel=1e-12)
    values[0, 0] = np.inf  # not NaN: it counts, so a check on the highest value sees it
    assert compiled.value_summary(values)[1] == np.inf
    assert compiled.value_summary(np.full((3, 3), np.nan, dtype=dtype)) == (np.inf, -np.inf, 0.0)
