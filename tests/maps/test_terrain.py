"""DEM conditioning and D8 routing: hand-built grids with known answers, and properties on random DEMs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from plastic_hotspots.maps.kernels.windows import d8_kernel
from plastic_hotspots.maps.science import terrain

SQRT2 = math.sqrt(2.0)


def route(
    dem: np.ndarray, cell_size: float = 1.0, nodata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    conditioned = terrain.condition(dem, cell_size, nodata=nodata)
    levels = terrain.flow_levels(conditioned.down)
    return conditioned.filled, conditioned.down, levels


def assert_steps_descend(conditioned: terrain.Conditioned) -> None:
    """Every routed step goes downhill, or along a flat to a cell one step nearer its outlet."""
    filled = conditioned.filled.ravel()
    distance = conditioned.flat_distance.ravel()
    down = conditioned.down
    has = np.flatnonzero(down >= 0)
    target = down[has]
    lower = filled[target] < filled[has]
    along_flat = (filled[target] == filled[has]) & (distance[target] == distance[has] - 1)
    assert np.all(lower | along_flat)
    # A cell routed along a flat is on the flat (distance > 0), a cell routed downhill is an outlet.
    assert np.all(distance[has[along_flat]] > 0)
    assert np.all(distance[has[lower]] == 0)


def path_end(down: np.ndarray, start: int) -> int:
    """Last cell on the flow path from ``start`` (the one with down == -1)."""
    c = start
    for _ in range(down.size + 1):
        if down[c] < 0:
            return c
        c = int(down[c])
    raise AssertionError(f"flow path from {start} does not end")


def path_length(down: np.ndarray, start: int) -> int:
    """Steps on the flow path from ``start`` to the cell with down == -1."""
    c, steps = start, 0
    while down[c] >= 0:
        c = int(down[c])
        steps += 1
        assert steps <= down.size, f"flow path from {start} does not end"
    return steps


def chain_down(n: int) -> np.ndarray:
    """A straight channel 0 -> 1 -> ... -> n-1 -> off the grid."""
    down = np.arange(1, n + 1, dtype=np.int64)
    down[-1] = -1
    return down


# Y-shaped network on a flat index space of 10 cells:
#   0 -> 1 -> 4,  2 -> 3 -> 4,  4 -> 5 -> 6 -> off;  7 -> 5 (a late tributary);  8, 9 isolated.
Y_DOWN = np.array([1, 4, 3, 4, 5, 6, -1, 5, -1, -1], dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# condition: depression fill and flat distances
# --------------------------------------------------------------------------------------------------


def test_single_pit_is_raised_exactly_to_its_spill_level() -> None:
    dem = np.array([[5.0, 5.0, 5.0], [5.0, 1.0, 4.0], [5.0, 5.0, 5.0]])
    conditioned = terrain.condition(dem, 1.0)
    filled = conditioned.filled
    assert filled[1, 1] == 4.0  # the lowest neighbour's level, not above
    mask = np.ones_like(dem, dtype=bool)
    mask[1, 1] = False
    np.testing.assert_array_equal(filled[mask], dem[mask])
    # The pit is now a one-cell flat one step from its outlet, the east neighbour on the edge.
    assert conditioned.flat_distance.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert conditioned.down[4] == 5
    assert conditioned.down[5] == -1  # the outlet has no lower neighbour: it drains off the grid


def test_walled_basin_is_filled_flat_and_everything_drains_through_the_gap() -> None:
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
    conditioned = terrain.condition(dem, 1.0)
    filled, down = conditioned.filled, conditioned.down
    levels = terrain.flow_levels(down)
    outlet = 4 * 5 + 2
    np.testing.assert_array_equal(filled[1:4, 1:4], 5.0)  # exactly flat at the spill level
    inner = np.zeros(dem.shape, dtype=bool)
    inner[2, 2] = True
    np.testing.assert_array_equal(filled[~inner], dem[~inner])
    # The bottom row of the basin sees the gap (1 m) diagonally or below: it is the flat's outlet.
    np.testing.assert_array_equal(conditioned.flat_distance[1:4, 1:4], [[2, 2, 2], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(conditioned.flat_distance[~np.pad(np.ones((3, 3), bool), 1)], 0)
    assert down[outlet] == -1
    assert all(path_end(down, c) == outlet for c in range(25))
    acc = terrain.accumulate(down, levels, np.ones(25))
    assert acc[outlet] == 25.0
    assert_steps_descend(conditioned)


def test_a_flat_at_everest_height_drains_everything_to_the_nearest_edge() -> None:
    rng = np.random.default_rng(3)
    rows, cols = 20, 17
    dem = np.full((rows, cols), 8848.0)
    dem[4:15, 3:13] -= rng.random((11, 10)) * 100.0  # a lake bed, filled flat to the plateau
    conditioned = terrain.condition(dem, 30.0)
    np.testing.assert_array_equal(conditioned.filled, 8848.0)
    r, c = np.indices((rows, cols))
    to_edge = np.minimum(np.minimum(r, c), np.minimum(rows - 1 - r, cols - 1 - c))
    np.testing.assert_array_equal(conditioned.flat_distance, to_edge)
    down = conditioned.down
    assert np.flatnonzero(down < 0).tolist() == np.flatnonzero(to_edge.ravel() == 0).tolist()
    assert [path_length(down, s) for s in range(down.size)] == to_edge.ravel().tolist()
    assert_steps_descend(conditioned)


def test_pit_next_to_nodata_drains_into_it_instead_of_being_filled() -> None:
    dem = np.full((5, 5), 10.0)
    dem[2, 2] = 1.0
    dem[2, 3] = np.nan
    conditioned = terrain.condition(dem, 1.0)
    filled, down = conditioned.filled, conditioned.down
    assert filled[2, 2] == 1.0
    assert np.isnan(filled[2, 3])
    assert conditioned.flat_distance[2, 2] == 0
    assert conditioned.flat_distance[2, 3] == -1
    assert down[2 * 5 + 2] == -1
    assert down[2 * 5 + 3] == -1
    assert down[1 * 5 + 2] == 2 * 5 + 2  # the cell to the north drains into the pit


def test_nodata_mask_and_sentinel_mark_cells_as_nodata() -> None:
    dem = np.full((4, 4), 3.0)
    dem[1, 1] = -9999.0
    by_value = terrain.condition(dem, 1.0, nodata=-9999.0)
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    by_mask = terrain.condition(dem, 1.0, nodata=mask)
    assert np.isnan(by_value.filled[1, 1])
    assert by_value.flat_distance[1, 1] == -1
    assert by_value.down[5] == -1
    assert 5 not in by_value.down.tolist()
    np.testing.assert_array_equal(by_value.filled, by_mask.filled)
    np.testing.assert_array_equal(by_value.flat_distance, by_mask.flat_distance)
    np.testing.assert_array_equal(by_value.down, by_mask.down)
    # Without the sentinel the cell is a pit, filled to the plain around it.
    plain = terrain.condition(dem, 1.0)
    assert plain.filled[1, 1] == 3.0
    assert plain.flat_distance[1, 1] == 1


# --------------------------------------------------------------------------------------------------
# D8 (through condition), step_length, flow_levels, accumulate
# --------------------------------------------------------------------------------------------------


def test_v_valley_tilted_south_drains_to_the_bottom_middle_cell() -> None:
    rows, cols = 7, 9
    r, c = np.indices((rows, cols))
    dem = 1.0 * np.abs(c - cols // 2) + 0.1 * (rows - 1 - r)
    conditioned = terrain.condition(dem, 10.0)
    filled, down = conditioned.filled, conditioned.down
    levels = terrain.flow_levels(down)
    np.testing.assert_array_equal(filled, dem)  # nothing to fill
    np.testing.assert_array_equal(conditioned.flat_distance, 0)  # and no flats
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
    conditioned = terrain.condition(dem, 1.0)
    np.testing.assert_array_equal(conditioned.filled, dem)
    assert conditioned.down[4] == 8
    dem[2, 2] = 8.7  # drop 1.3 / sqrt 2 = 0.92 < 1
    assert terrain.condition(dem, 1.0).down[4] == 5


def test_d8_edge_cells_without_lower_neighbours_drain_off_grid_and_nodata_is_minus_one() -> None:
    dem = np.array([[1.0, 2.0, 3.0], [2.0, np.nan, 4.0], [3.0, 4.0, 5.0]])
    conditioned = terrain.condition(dem, 1.0)
    np.testing.assert_array_equal(conditioned.filled, dem)
    down = conditioned.down
    assert down[0] == -1  # the lowest corner
    assert down[4] == -1  # nodata
    assert down[1] == 0
    assert down[8] == 5  # N and W drop equally; the tie goes to N
    assert down[7] == 3  # NW drops 2 over sqrt 2, steeper than W (1 over 1)
    assert 4 not in down.tolist()


def test_d8_counts_a_drop_that_underflows_to_zero_per_metre() -> None:
    # The centre is the smallest subnormal above the 0 on the south edge: 5e-324 / 30 rounds to 0.
    dem = np.array([[1.0, 1.0, 1.0], [1.0, 5e-324, 1.0], [1.0, 0.0, 1.0]])
    conditioned = terrain.condition(dem, 30.0)
    np.testing.assert_array_equal(conditioned.filled, dem)
    assert conditioned.flat_distance[1, 1] == 0
    assert conditioned.down[4] == 7


def test_d8_kernel_routes_flats_by_distance_and_refuses_distances_that_are_not_final() -> None:
    # A 1 x 3 flat inside a rim, whose east cell sees a lower halo cell: the flat drains east.
    padded = np.array(
        [
            [9.0, 9.0, 9.0, 9.0, 9.0],
            [9.0, 4.0, 4.0, 4.0, 3.0],
            [9.0, 9.0, 9.0, 9.0, 9.0],
        ]
    )
    distance = np.zeros(padded.shape, dtype=np.int64)
    distance[1, 1:4] = [2, 1, 0]
    down = d8_kernel(padded, distance, 1.0, (5, 10), 100)
    assert down.tolist() == [[5 * 100 + 11, 5 * 100 + 12, 5 * 100 + 13]]
    distance[1, 1:4] = [2, 2, 0]  # the middle cell is not one step nearer than its west neighbour
    with pytest.raises(ValueError, match=r"flat cell \(5, 10\) has no neighbour one step nearer"):
        d8_kernel(padded, distance, 1.0, (5, 10), 100)
    with pytest.raises(ValueError, match=r"cell_size must be .* > 0, got 0"):
        d8_kernel(padded, distance, 0, (5, 10), 100)


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
        terrain.condition(dem, -1.0)
    with pytest.raises(ValueError, match=r"cell_size must be .* > 0, got 0"):
        terrain.condition(dem, 0)
    with pytest.raises(ValueError, match=r"must be a 2-D raster .* got an array of shape \(12,\)"):
        terrain.condition(dem.ravel(), 1.0)
    with pytest.raises(ValueError, match=r"must have at least one cell, got shape \(0, 3\)"):
        terrain.condition(np.zeros((0, 3)), 1.0)
    with pytest.raises(
        ValueError, match=r"nodata mask must have the raster's shape \(3, 4\), got shape \(4, 3\)"
    ):
        terrain.condition(dem, 1.0, nodata=np.zeros((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="nodata mask must be a boolean array, got dtype int64"):
        terrain.condition(dem, 1.0, nodata=np.zeros((3, 4), dtype=np.int64))
    down = terrain.condition(dem, 1.0).down
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


def touches_the_edge_or(holes: np.ndarray) -> np.ndarray:
    """Cells on the grid edge or 8-adjacent to a cell of ``holes``."""
    rows, cols = holes.shape
    blocked = np.pad(holes, 1, constant_values=True)
    touches = np.zeros_like(holes)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                touches |= blocked[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    return touches


@settings(max_examples=150, deadline=None)
@given(dem=hnp.arrays(np.float64, dem_shapes, elements=elevations))
def test_filled_dem_drains_every_cell_off_the_grid(dem: np.ndarray) -> None:
    conditioned = terrain.condition(dem, 30.0)
    filled, down = conditioned.filled, conditioned.down
    levels = terrain.flow_levels(down)
    n = dem.size
    assert np.all(filled >= dem)
    assert np.all(np.isin(filled, dem))  # no epsilon: every filled level is some cell's elevation
    edge = touches_the_edge_or(np.zeros(dem.shape, dtype=bool))
    np.testing.assert_array_equal(filled[edge], dem[edge])  # edge cells drain off: never raised
    assert sorted(np.concatenate(levels).tolist()) == list(range(n))
    assert_steps_descend(conditioned)
    assert np.all(conditioned.flat_distance >= 0)
    acc = terrain.accumulate(down, levels, np.ones(n))
    has = down >= 0
    assert acc[~has].sum() == n
    # Only cells on the grid edge can drain off it.
    assert np.all(edge.ravel()[~has])


@settings(max_examples=100, deadline=None)
@given(
    dem=hnp.arrays(np.float64, st.just((9, 9)), elements=elevations),
    holes=hnp.arrays(np.bool_, st.just((9, 9)), elements=st.booleans()),
)
def test_filled_dem_with_nodata_drains_to_the_edge_or_to_nodata(dem: np.ndarray, holes: np.ndarray) -> None:
    dem = np.where(holes, np.nan, dem)
    conditioned = terrain.condition(dem, 30.0)
    filled, down = conditioned.filled, conditioned.down
    levels = terrain.flow_levels(down)
    assert np.isnan(filled[holes]).all()
    assert np.all(conditioned.flat_distance[holes] == -1)
    assert np.all(conditioned.flat_distance[~holes] >= 0)
    valid = ~holes.ravel()
    np.testing.assert_array_equal(filled.ravel()[valid] >= dem.ravel()[valid], True)
    assert np.all(down[holes.ravel()] == -1)
    has = down >= 0
    assert np.all(valid[down[has]])  # nothing is routed into a nodata cell
    assert_steps_descend(conditioned)
    acc = terrain.accumulate(down, levels, valid.astype(np.float64))
    assert acc[down < 0].sum() == valid.sum()
    # Every valid exit is on the edge or touches nodata.
    exits = (~has) & valid
    assert np.all(touches_the_edge_or(holes).ravel()[exits])


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
    conditioned = terrain.condition(dem, 30.0)
    filled, down = conditioned.filled, conditioned.down
    levels = terrain.flow_levels(down)
    valid = np.isfinite(dem).ravel()
    assert np.all(filled.ravel()[valid] >= dem.ravel()[valid])
    assert sum(lv.size for lv in levels) == dem.size
    acc = terrain.accumulate(down, levels, valid.astype(np.float64))
    assert acc[down < 0].sum() == valid.sum()
    assert_steps_descend(conditioned)
    assert conditioned.flat_distance.max() > 0  # filled pits make flats, routed by distance
