from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps.density import Observations, observed_density, shrunk_rate, track_effort_km


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
