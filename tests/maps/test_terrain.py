"""DEM conditioning and D8 routing: hand-built grids with known answers, and properties on random DEMs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maps import terrain

SQRT2 = math.sqrt(2.0)


def route(
    dem: np.ndarray, cell_size: float = 1.0, nodata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    filled = terrain.fill_depressions(dem, nodata=nodata)
    down = terrain.d8_downstream(filled, cell_size, nodata=nodata)
    levels = terrain.flow_levels(down)
    return filled, down, levels


def path_end(down: np.ndarray, start: int) -> int:
    """Last cell on the flow path from ``start`` (the one with down == -1)."""
    c = start
    for _ in range(down.size + 1):
        if down[c] < 0:
            return c
        c = int(down[c])
    raise AssertionError(f"flow path from {start} does not end")


def chain_down(n: int) -> np.ndarray:
    """A straight channel 0 -> 1 -> ... -> n-1 -> off the grid."""
    down = np.arange(1, n + 1, dtype=np.int64)
    down[-1] = -1
    return down


# Y-shaped network on a flat index space of 10 cells:
#   0 -> 1 -> 4,  2 -> 3 -> 4,  4 -> 5 -> 6 -> off;  7 -> 5 (a late tributary);  8, 9 isolated.
Y_DOWN = np.array([1, 4, 3, 4, 5, 6, -1, 5, -1, -1], dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# fill_depressions
# --------------------------------------------------------------------------------------------------


def test_single_pit_is_raised_just_above_its_lowest_neighbour() -> None:
    dem = np.array([[5.0, 5.0, 5.0], [5.0, 1.0, 4.0], [5.0, 5.0, 5.0]])
    filled = terrain.fill_depressions(dem, epsilon=1e-3)
    assert filled[1, 1] == pytest.approx(4.001, abs=1e-12)
    mask = np.ones_like(dem, dtype=bool)
    mask[1, 1] = False
    np.testing.assert_array_equal(filled[mask], dem[mask])


def test_walled_basin_is_filled_and_everything_drains_through_the_gap() -> None:
    dem = np.array(
        [
            [9, 9, 9, 9, 9],
            [9, 5, 5, 5, 9],
            [9, 5, 0, 5, 9],
            [9, 5, 5, 5, 9],
            [9, 9, 1, 9, 9],
        ],
        dtype=np.float64,
    )
    filled, down, levels = route(dem)
    outlet = 4 * 5 + 2
    assert 5.0 < filled[2, 2] < 5.0 + 1e-3
    assert np.all(filled >= dem)
    assert down[outlet] == -1
    assert all(path_end(down, c) == outlet for c in range(25))
    acc = terrain.accumulate(down, levels, np.ones(25))
    assert acc[outlet] == 25.0
    # Every routed step goes strictly downhill on the filled DEM.
    flat = filled.ravel()
    has = down >= 0
    assert np.all(flat[down[has]] < flat[has])


def test_pit_next_to_nodata_drains_into_it_instead_of_being_filled() -> None:
    dem = np.full((5, 5), 10.0)
    dem[2, 2] = 1.0
    dem[2, 3] = np.nan
    filled, down, _ = route(dem)
    assert filled[2, 2] == 1.0
    assert np.isnan(filled[2, 3])
    assert down[2 * 5 + 2] == -1
    assert down[2 * 5 + 3] == -1


def test_nodata_mask_and_sentinel_mark_cells_as_nodata() -> None:
    dem = np.full((4, 4), 3.0)
    dem[1, 1] = -9999.0
    by_value = terrain.fill_depressions(dem, nodata=-9999.0)
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    by_mask = terrain.fill_depressions(dem, nodata=mask)
    assert np.isnan(by_value[1, 1])
    np.testing.assert_array_equal(by_value, by_mask)


def test_epsilon_zero_still_raises_strictly() -> None:
    dem = np.array([[2.0, 2.0, 2.0], [2.0, 0.0, 2.0], [2.0, 2.0, 2.0]])
    filled = terrain.fill_depressions(dem, epsilon=0.0)
    assert filled[1, 1] == math.nextafter(2.0, math.inf)


def test_fill_keeps_strict_drainage_at_everest_heights() -> None:
    rng = np.random.default_rng(3)
    dem = 8800.0 + rng.random((20, 20))
    filled, down, levels = route(dem)
    acc = terrain.accumulate(down, levels, np.ones(down.size))
    assert acc[down < 0].sum() == down.size
    flat = filled.ravel()
    has = down >= 0
    assert np.all(flat[down[has]] < flat[has])


# --------------------------------------------------------------------------------------------------
# d8_downstream, step_length, flow_levels, accumulate
# --------------------------------------------------------------------------------------------------


def test_v_valley_tilted_south_drains_to_the_bottom_middle_cell() -> None:
    rows, cols = 7, 9
    r, c = np.indices((rows, cols))
    dem = 1.0 * np.abs(c - cols // 2) + 0.1 * (rows - 1 - r)
    filled, down, levels = route(dem, cell_size=10.0)
    np.testing.assert_array_equal(filled, dem)  # nothing to fill
    outlet = (rows - 1) * cols + cols // 2
    assert np.flatnonzero(down < 0).tolist() == [outlet]
    acc = terrain.accumulate(down, levels, np.ones(rows * cols))
    assert acc[outlet] == rows * cols
    # The valley column carries everything above it: row r holds (r + 1) rows of cells.
    valley = acc.reshape(rows, cols)[:, cols // 2]
    np.testing.assert_array_equal(valley, cols * np.arange(1, rows + 1))


def test_d8_takes_the_steepest_drop_per_distance_not_the_largest_drop() -> None:
    # Centre 10; east neighbour 9 (drop 1 / 1), south-east neighbour 8.5 (drop 1.5 / sqrt 2 = 1.06).
    dem = np.array([[20.0, 20.0, 20.0], [20.0, 10.0, 9.0], [20.0, 20.0, 8.5]])
    down = terrain.d8_downstream(dem, 1.0)
    assert down[4] == 8
    dem[2, 2] = 8.7  # drop 1.3 / sqrt 2 = 0.92 < 1
    assert terrain.d8_downstream(dem, 1.0)[4] == 5


def test_d8_edge_cells_without_lower_neighbours_drain_off_grid_and_nodata_is_minus_one() -> None:
    dem = np.array([[1.0, 2.0, 3.0], [2.0, np.nan, 4.0], [3.0, 4.0, 5.0]])
    down = terrain.d8_downstream(dem, 1.0)
    assert down[0] == -1  # the lowest corner
    assert down[4] == -1  # nodata
    assert down[1] == 0
    assert down[8] == 5  # N and W drop equally; the tie goes to N
    assert down[7] == 3  # NW drops 2 over sqrt 2, steeper than W (1 over 1)
    assert 4 not in down.tolist()


def test_step_length_is_cell_or_diagonal_and_cell_size_off_grid() -> None:
    #  0 -> 1 (east), 1 -> 5 (south-east), 5 -> 9 (south), 9 off grid, others off grid.
    down = np.full(12, -1, dtype=np.int64)
    down[0], down[1], down[5] = 1, 6, 9
    step = terrain.step_length(down, (3, 4), 30.0)
    assert step[0] == 30.0
    assert step[1] == pytest.approx(30.0 * SQRT2)
    assert step[5] == 30.0
    assert step[9] == 30.0
    assert step[11] == 30.0


def test_flow_levels_put_every_cell_after_its_upstream_cells() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    assert [lv.tolist() for lv in levels] == [[0, 2, 7, 8, 9], [1, 3], [4], [5], [6]]
    level_of = {int(c): i for i, lv in enumerate(levels) for c in lv}
    for u, d in enumerate(Y_DOWN.tolist()):
        if d >= 0:
            assert level_of[u] < level_of[d]


def test_flow_levels_reject_a_cycle() -> None:
    down = np.array([1, 2, 0, -1], dtype=np.int64)
    with pytest.raises(ValueError, match="cycle: 3 of 4 cells never drain"):
        terrain.flow_levels(down)
    with pytest.raises(ValueError, match="cycle"):
        terrain.flow_levels(np.array([0], dtype=np.int64))


def test_accumulate_with_transfer_gives_a_geometric_series() -> None:
    dem = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    _, down, levels = route(dem)
    assert down.tolist() == [1, 2, 3, 4, -1]
    acc = terrain.accumulate(down, levels, np.ones(5), np.full(5, 0.5))
    expected = [sum(0.5**k for k in range(i + 1)) for i in range(5)]
    np.testing.assert_allclose(acc, expected)
    np.testing.assert_allclose(acc, 2.0 - 0.5 ** np.arange(5))


def test_accumulate_sums_weights_at_a_confluence() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    weights = np.arange(1.0, 11.0)
    acc = terrain.accumulate(Y_DOWN, levels, weights)
    # cell 4 gets 1+2 (via 1) and 3+4 (via 3) plus its own 5.
    assert acc[4] == 15.0
    assert acc[5] == 15.0 + 6.0 + 8.0
    assert acc[6] == 29.0 + 7.0
    assert acc[8] == 9.0


# --------------------------------------------------------------------------------------------------
# Downstream sweeps
# --------------------------------------------------------------------------------------------------


def test_downstream_product_stops_at_rivers_and_is_zero_off_grid() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    factor = np.full(10, 0.5)
    stop = np.zeros(10, dtype=bool)
    stop[4] = True
    p = terrain.downstream_product(Y_DOWN, levels, factor, stop)
    assert p[4] == 1.0
    assert p[1] == 0.5
    assert p[0] == 0.25
    assert p[5] == 0.0  # below the river cell, the path leaves the grid
    assert p[7] == 0.0
    assert p[9] == 0.0


def test_first_downstream_and_distance_on_a_channel() -> None:
    down = chain_down(6)
    levels = terrain.flow_levels(down)
    mask = np.zeros(6, dtype=bool)
    mask[[2, 4]] = True
    first = terrain.first_downstream(down, levels, mask)
    assert first.tolist() == [2, 2, 2, 4, 4, -1]
    lengths = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    dist = terrain.downstream_distance(down, levels, lengths, mask)
    assert dist.tolist() == [30.0, 20.0, 0.0, 40.0, 0.0, math.inf]


def test_upstream_of_delineates_the_basin_of_an_outlet() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    assert np.flatnonzero(terrain.upstream_of(Y_DOWN, levels, 4)).tolist() == [0, 1, 2, 3, 4]
    assert np.flatnonzero(terrain.upstream_of(Y_DOWN, levels, 6)).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert np.flatnonzero(terrain.upstream_of(Y_DOWN, levels, 9)).tolist() == [9]
    with pytest.raises(ValueError, match=r"index must be a flat index in \[0, 9\], got 10"):
        terrain.upstream_of(Y_DOWN, levels, 10)


def test_label_catchments_uses_positions_of_pour_points() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    labels = terrain.label_catchments(Y_DOWN, levels, np.array([6, 3], dtype=np.int64))
    assert labels.tolist() == [0, 0, 1, 1, 0, 0, 0, 0, -1, -1]
    with pytest.raises(ValueError, match="must be distinct, got flat index 3"):
        terrain.label_catchments(Y_DOWN, levels, np.array([3, 3], dtype=np.int64))


def test_strahler_order_increases_only_where_equal_orders_meet() -> None:
    levels = terrain.flow_levels(Y_DOWN)
    rivers = np.ones(10, dtype=bool)
    order = terrain.strahler_order(Y_DOWN, levels, rivers)
    # Two order-1 streams meet at 4 -> 2; the order-1 tributary 7 joining at 5 keeps it 2.
    assert order.tolist() == [1, 1, 1, 1, 2, 2, 2, 1, 1, 1]
    rivers[[8, 9]] = False
    rivers[0] = False  # 1 becomes a source; still two order-1 streams at 4
    order = terrain.strahler_order(Y_DOWN, levels, rivers)
    assert order.tolist() == [0, 1, 1, 1, 2, 2, 2, 1, 0, 0]


def test_strahler_order_three_where_two_order_two_streams_meet() -> None:
    # Two copies of a Y (cells 0-4 and 5-9), joining at 10 -> 11 -> off.
    down = np.array([2, 2, 4, 4, 10, 7, 7, 9, 9, 10, 11, -1], dtype=np.int64)
    levels = terrain.flow_levels(down)
    order = terrain.strahler_order(down, levels, np.ones(12, dtype=bool))
    assert order.tolist() == [1, 1, 2, 1, 2, 1, 1, 2, 1, 2, 3, 3]


# --------------------------------------------------------------------------------------------------
# Slope, hillshade, snapping
# --------------------------------------------------------------------------------------------------


def test_slope_of_a_plane_is_its_gradient_inside_and_nan_on_nodata() -> None:
    cell = 25.0
    x = np.arange(8) * cell
    y = np.arange(6) * cell
    dem = 0.1 * x[None, :] + 0.0 * y[:, None]
    s = terrain.slope(dem, cell)
    np.testing.assert_allclose(s[1:-1, 1:-1], 0.1)
    # Edge replication halves the gradient across the west and east borders.
    np.testing.assert_allclose(s[1:-1, 0], 0.05)
    tilted = 0.3 * x[None, :] + 0.4 * y[:, None]
    np.testing.assert_allclose(terrain.slope(tilted, cell)[1:-1, 1:-1], 0.5)
    dem[2, 3] = np.nan
    s = terrain.slope(dem, cell)
    assert np.isnan(s[2, 3])
    assert np.isfinite(np.delete(s.ravel(), 2 * 8 + 3)).all()


def test_hillshade_is_in_unit_range_and_lights_slopes_facing_the_sun() -> None:
    rng = np.random.default_rng(1)
    dem = rng.normal(scale=50.0, size=(30, 30))
    shade = terrain.hillshade(dem, 10.0)
    assert np.all((shade >= 0.0) & (shade <= 1.0))
    flat = terrain.hillshade(np.zeros((5, 5)), 10.0)
    np.testing.assert_allclose(flat, math.sin(math.radians(45.0)))
    r, c = np.indices((9, 9)).astype(np.float64)
    # Rising to the south-east faces the north-west sun (azimuth 315) ...
    facing = terrain.hillshade(1.0 * (r + c), 1.0)[4, 4]
    away = terrain.hillshade(-1.0 * (r + c), 1.0)[4, 4]
    assert facing > flat[2, 2] > away
    # ... and a 45-degree slope facing it straight on is lit at normal incidence.
    normal = terrain.hillshade(SQRT2 / 2.0 * (r + c), 1.0)[4, 4]
    assert normal == pytest.approx(1.0)


def test_snap_to_max_finds_the_largest_cell_in_the_window() -> None:
    acc = np.zeros((10, 10))
    acc[2, 7] = 50.0
    acc[9, 9] = 100.0
    assert terrain.snap_to_max(acc, 3, 5, 2) == (2, 7)
    assert terrain.snap_to_max(acc, 3, 5, 0) == (3, 5)
    assert terrain.snap_to_max(acc, 3, 5, 6) == (9, 9)
    with pytest.raises(ValueError, match=r"must lie in the 10 x 10 grid, got \(10, 0\)"):
        terrain.snap_to_max(acc, 10, 0, 2)


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def test_bad_inputs_raise_value_errors_naming_expected_and_got() -> None:
    dem = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"cell_size must be .* > 0, got -1"):
        terrain.d8_downstream(dem, -1.0)
    with pytest.raises(ValueError, match=r"must be a 2-D raster .* got an array of shape \(12,\)"):
        terrain.fill_depressions(dem.ravel())
    with pytest.raises(
        ValueError, match=r"nodata mask must have the raster's shape \(3, 4\), got shape \(4, 3\)"
    ):
        terrain.fill_depressions(dem, nodata=np.zeros((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="epsilon must be"):
        terrain.fill_depressions(dem, epsilon=-1.0)
    down = terrain.d8_downstream(dem, 1.0)
    levels = terrain.flow_levels(down)
    with pytest.raises(
        ValueError, match=r"weights must be a flat array .* shape \(12,\) .* got shape \(3, 4\)"
    ):
        terrain.accumulate(down, levels, np.ones((3, 4)))
    with pytest.raises(ValueError, match="levels must cover every one of the 12 cells"):
        terrain.accumulate(down, levels[:0], np.ones(12))
    with pytest.raises(
        ValueError, match=r"down must hold -1 or flat indices in \[0, 2\], got values from -1 to 7"
    ):
        terrain.flow_levels(np.array([7, -1, -1], dtype=np.int64))
    with pytest.raises(ValueError, match="down must have rows \\* cols = 6 entries"):
        terrain.step_length(np.full(5, -1, dtype=np.int64), (2, 3), 1.0)


# --------------------------------------------------------------------------------------------------
# Properties on random DEMs
# --------------------------------------------------------------------------------------------------

dem_shapes = st.tuples(st.integers(2, 12), st.integers(2, 12))
elevations = st.one_of(
    st.floats(-100.0, 9000.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, 2.0]),  # many ties: flats and flat-bottomed pits
)


@settings(max_examples=150, deadline=None)
@given(dem=hnp.arrays(np.float64, dem_shapes, elements=elevations))
def test_filled_dem_drains_every_cell_off_the_grid(dem: np.ndarray) -> None:
    filled, down, levels = route(dem, cell_size=30.0)
    n = dem.size
    assert np.all(filled >= dem)
    assert np.all(filled <= dem.max() + n * 1e-6 + 1e-9)
    assert sorted(np.concatenate(levels).tolist()) == list(range(n))
    has = down >= 0
    flat = filled.ravel()
    assert np.all(flat[down[has]] < flat[has])
    acc = terrain.accumulate(down, levels, np.ones(n))
    assert acc[~has].sum() == n
    # Only cells on the grid edge can drain off it.
    r, c = np.divmod(np.flatnonzero(~has), dem.shape[1])
    assert np.all((r == 0) | (c == 0) | (r == dem.shape[0] - 1) | (c == dem.shape[1] - 1))


@settings(max_examples=100, deadline=None)
@given(
    dem=hnp.arrays(np.float64, st.just((9, 9)), elements=elevations),
    holes=hnp.arrays(np.bool_, st.just((9, 9)), elements=st.booleans()),
)
def test_filled_dem_with_nodata_drains_to_the_edge_or_to_nodata(dem: np.ndarray, holes: np.ndarray) -> None:
    dem = np.where(holes, np.nan, dem)
    filled, down, levels = route(dem, cell_size=30.0)
    assert np.isnan(filled[holes]).all()
    valid = ~holes.ravel()
    np.testing.assert_array_equal(filled.ravel()[valid] >= dem.ravel()[valid], True)
    assert np.all(down[holes.ravel()] == -1)
    has = down >= 0
    assert np.all(valid[down[has]])  # nothing is routed into a nodata cell
    acc = terrain.accumulate(down, levels, valid.astype(np.float64))
    assert acc[down < 0].sum() == valid.sum()
    # Every valid exit is on the edge or touches nodata.
    blocked = np.pad(holes, 1, constant_values=True)
    touches = np.zeros_like(holes)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            touches |= blocked[1 + dr : 10 + dr, 1 + dc : 10 + dc]
    exits = (~has) & valid
    assert np.all(touches.ravel()[exits])


@settings(max_examples=50, deadline=None)
@given(
    dem=hnp.arrays(np.float64, dem_shapes, elements=elevations),
    data=st.data(),
)
def test_sweeps_agree_with_walking_each_flow_path(dem: np.ndarray, data: st.DataObject) -> None:
    _, down, levels = route(dem, cell_size=1.0)
    n = dem.size
    stop = data.draw(hnp.arrays(np.bool_, n, elements=st.booleans()))
    factor = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    lengths = terrain.step_length(down, dem.shape, 1.0)
    p = terrain.downstream_product(down, levels, factor, stop)
    first = terrain.first_downstream(down, levels, stop)
    dist = terrain.downstream_distance(down, levels, lengths, stop)
    for start in range(n):
        c, prod, walked = start, 1.0, 0.0
        while c >= 0 and not stop[c]:
            prod *= factor[c]
            walked += lengths[c]
            c = int(down[c])
        if c < 0:
            assert (p[start], first[start], dist[start]) == (0.0, -1, math.inf)
        else:
            assert first[start] == c
            assert p[start] == pytest.approx(prod)
            assert dist[start] == pytest.approx(walked)


def test_large_random_noise_dem_fills_and_routes() -> None:
    rng = np.random.default_rng(42)
    dem = rng.random((600, 600)) * 100.0
    dem[rng.random((600, 600)) < 0.01] = np.nan
    filled, down, levels = route(dem, cell_size=30.0)
    valid = np.isfinite(dem).ravel()
    assert np.all(filled.ravel()[valid] >= dem.ravel()[valid])
    assert sum(lv.size for lv in levels) == dem.size
    acc = terrain.accumulate(down, levels, valid.astype(np.float64))
    assert acc[down < 0].sum() == valid.sum()
    has = down >= 0
    assert np.all(filled.ravel()[down[has]] < filled.ravel()[has])
