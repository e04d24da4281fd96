from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic_hotspots.maps.inputs.observations import Observations, track_effort_km
from plastic_hotspots.maps.survey.density import observed_density, shrunk_rate, track_adjusted_exposure


def make_obs(items: list[float], n: int | None = None) -> Observations:
    k = len(items)
    return Observations(
        x=np.zeros(k),
        y=np.zeros(k),
        items=np.array(items, dtype=float),
        track=np.array(["t"] * k),
        effort_km=np.full(k, 0.01),
    )


def test_low_effort_cells_shrink_towards_the_area_rate_and_are_not_called_clean() -> None:
    rows = np.array([0] * 20 + [1] * 2 + [2] * 2)
    cols = np.zeros(24, dtype=np.int64)
    items = [1.0] * 20 + [10.0, 10.0] + [0.0, 0.0]
    grid = observed_density(
        rows, cols, make_obs(items), (3, 1), min_observations=3, prior_strength=5, interval=0.9
    )
    assert grid.observations[:, 0].tolist() == [20, 2, 2]
    assert grid.surveyed[:, 0].tolist() == [True, False, False]
    assert np.isnan(grid.rate[1, 0])  # not surveyed, not zero
    assert np.isnan(grid.rate[2, 0])
    assert grid.area_rate == pytest.approx(40 / 24)
    assert grid.rate_lo[0, 0] < grid.rate[0, 0] < grid.rate_hi[0, 0]


def test_shrinkage_weight_follows_effort() -> None:
    mean, lo, hi = shrunk_rate(np.array([10.0, 100.0]), np.array([2.0, 20.0]), 1.0, 5.0, 0.9)
    # Both cells observe 5 items per image; the one with more effort stays closer to it.
    assert mean[0] < mean[1] < 5.0
    assert (hi[1] - lo[1]) < (hi[0] - lo[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=3, max_size=40), st.randoms(use_true_random=False))
def test_permuting_observations_changes_nothing(items: list[int], rnd: object) -> None:
    n = len(items)
    rows = np.arange(n, dtype=np.int64) % 3
    cols = np.zeros(n, dtype=np.int64)
    perm = np.random.default_rng(n).permutation(n)
    a = observed_density(
        rows,
        cols,
        make_obs([float(i) for i in items]),
        (3, 1),
        min_observations=1,
        prior_strength=5,
        interval=0.9,
    )
    b = observed_density(
        rows[perm],
        cols[perm],
        make_obs([float(items[i]) for i in perm]),
        (3, 1),
        min_observations=1,
        prior_strength=5,
        interval=0.9,
    )
    np.testing.assert_allclose(a.rate, b.rate)
    np.testing.assert_allclose(a.items, b.items)


def test_track_effort_halves_gaps_and_breaks_long_ones() -> None:
    x = np.array([0.0, 100.0, 200.0, 5000.0, 0.0, 50.0])
    y = np.zeros(6)
    track = np.array(["a", "a", "a", "a", "b", "b"])
    effort = track_effort_km(x, y, track, np.arange(6, dtype=float))
    np.testing.assert_allclose(effort, [0.05, 0.1, 0.05, 0.0, 0.025, 0.025])


def test_a_track_that_sees_more_everywhere_does_not_make_its_own_cells_hot() -> None:
    """Two tracks share cells 0-19; 'keen' sees twice what 'plain' sees. Cell 20 is seen by 'keen' only."""
    rng = np.random.default_rng(5)
    true_rate = 1.0
    rows, items, tracks = [], [], []
    for cell in range(21):
        for name, level in (("plain", 1.0), ("keen", 2.0)):
            if cell == 20 and name == "plain":
                continue
            for _ in range(30):
                rows.append(cell)
                items.append(float(rng.poisson(true_rate * level)))
                tracks.append(name)
    obs = Observations(
        x=np.zeros(len(rows)),
        y=np.zeros(len(rows)),
        items=np.array(items),
        track=np.array(tracks),
        effort_km=np.full(len(rows), 0.01),
    )
    r, c = np.array(rows), np.zeros(len(rows), dtype=np.int64)
    grid = observed_density(r, c, obs, (21, 1), min_observations=3, prior_strength=5.0, interval=0.9)
    effects = grid.track_effects
    assert effects["keen"] / effects["plain"] == pytest.approx(2.0, rel=0.1)
    shared = float(np.mean(grid.rate[:20, 0]))
    # Unadjusted, cell 20 would look about 4/3 as littered as the shared cells; adjusted it does not.
    assert grid.rate[20, 0] == pytest.approx(shared, rel=0.12)
    single = Observations(obs.x, obs.y, obs.items, np.full(len(rows), "one"), obs.effort_km)
    plain = observed_density(r, c, single, (21, 1), min_observations=3, prior_strength=5.0, interval=0.9)
    assert plain.track_effects == {"one": 1.0}
    assert plain.rate[20, 0] > 1.2 * float(np.mean(plain.rate[:20, 0]))


def _full_grid_density(
    rows: np.ndarray, cols: np.ndarray, obs: Observations, shape: tuple[int, int], min_observations: int
) -> dict[str, np.ndarray]:
    """The density computed on every cell of the grid, as a reference for the per-surveyed-cell one."""
    size = shape[0] * shape[1]
    flat = rows * shape[1] + cols
    count = np.bincount(flat, minlength=size).astype(float)
    items = np.bincount(flat, weights=obs.items, minlength=size)
    exposure, strength, _ = track_adjusted_exposure(flat, obs.items, obs.track, size, None, 1.0)
    area_rate = float(items.sum() / count.sum())
    mean, lo, hi = shrunk_rate(items, exposure, area_rate, strength, 0.9)
    surveyed = count >= min_observations
    return {
        "observations": count.reshape(shape),
        "items": items.reshape(shape),
        "effort_km": np.bincount(flat, weights=obs.effort_km, minlength=size).reshape(shape),
        "rate": np.where(surveyed, mean, np.nan).reshape(shape),
        "rate_lo": np.where(surveyed, lo, np.nan).reshape(shape),
        "rate_hi": np.where(surveyed, hi, np.nan).reshape(shape),
        "surveyed": surveyed.reshape(shape),
    }


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 4))
def test_a_small_survey_on_a_large_grid_equals_the_whole_grid_computation(seed: int, min_obs: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 300)), int(rng.integers(1, 300)))
    n = int(rng.integers(1, 500))
    r0, c0 = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
    rows = np.clip(r0 + rng.integers(-4, 5, n), 0, shape[0] - 1)
    cols = np.clip(c0 + rng.integers(-4, 5, n), 0, shape[1] - 1)
    items = rng.poisson(rng.uniform(0.1, 3.0), n).astype(float)
    obs = Observations(
        x=np.zeros(n),
        y=np.zeros(n),
        items=items,
        track=np.array([f"t{k}" for k in rng.integers(0, 3, n)]),
        effort_km=rng.uniform(0.0, 0.02, n),
        classes={"bottle": np.floor(items / 2)},
    )
    grid = observed_density(
        rows, cols, obs, shape, min_observations=min_obs, prior_strength=None, interval=0.9
    )
    reference = _full_grid_density(rows, cols, obs, shape, min_obs)
    if min_obs == 0:  # every cell is surveyed; those without observations carry the prior
        assert grid.surveyed.all()
        assert np.isfinite(grid.rate).all()
    for name, expected in reference.items():
        np.testing.assert_allclose(getattr(grid, name), expected, rtol=1e-12, atol=0, err_msg=name)
    bottles = np.bincount(
        rows * shape[1] + cols, weights=obs.classes["bottle"], minlength=shape[0] * shape[1]
    )
    np.testing.assert_array_equal(grid.classes["bottle"].ravel(), bottles)
    assert grid.observations.dtype == np.int64
    assert grid.cells is not None
    np.testing.assert_array_equal(grid.cells, np.flatnonzero(grid.observations > 0))
    np.testing.assert_array_equal(grid.observed_cells(), grid.cells)


def test_an_empty_survey_leaves_every_cell_unsurveyed() -> None:
    none = np.zeros(0, dtype=np.int64)
    grid = observed_density(
        none, none, make_obs([]), (3, 4), min_observations=1, prior_strength=None, interval=0.9
    )
    assert not grid.surveyed.any()
    assert np.isnan(grid.rate).all()
    assert grid.observations.shape == (3, 4)
    assert grid.observed_cells().size == 0


def test_a_survey_grid_too_large_for_memory_is_refused_before_any_work() -> None:
    from plastic_hotspots.errors import ConfigError
    from plastic_hotspots.maps.survey.cells import check_density_fits
    from plastic_hotspots.records import GridSpec

    grid = GridSpec(crs="EPSG:32647", west=0.0, north=0.0, cell_size=1.0, width=15_000, height=15_000)
    with pytest.raises(ConfigError, match=r"225,000,000 cells .* need about 27 GiB of memory") as info:
        check_density_fits(grid, available=4 << 30)
    assert "--cell-size 3 or more" in info.value.hint  # 128 bytes x (15 km / 3 m)^2 = 3 GiB
    check_density_fits(grid, available=64 << 30)  # fits
    check_density_fits(grid, available=None)  # unknown: no check
