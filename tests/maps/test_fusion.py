"""Calibration of modelled sources against observed litter: Poisson fit, intervals, excess cells, folds."""

from __future__ import annotations

import numpy as np
import pytest

from maps.fusion import calibrate, far_above, track_folds


def _survey(seed: int, cells: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    l_src = rng.gamma(0.8, 300.0, cells)
    n = rng.integers(3, 30, cells).astype(float)
    items = rng.poisson(n * (0.05 + 0.004 * l_src)).astype(float)
    return l_src, items, n


def test_recovers_a_known_link_within_its_interval() -> None:
    covered = 0
    for seed in range(20):
        l_src, items, n = _survey(seed)
        fit = calibrate(l_src, items, n, interval=0.9)
        covered += fit.scale_lo <= 0.004 <= fit.scale_hi
        assert fit.scale == pytest.approx(0.004, rel=0.1)
        assert fit.background == pytest.approx(0.05, abs=0.03)
        assert fit.excess_cells == 0
        assert fit.deviance < fit.null_deviance
    assert covered >= 15  # a 90 % interval covers the truth in about 18 of 20 surveys


def test_a_dump_is_flagged_and_does_not_bend_the_fit() -> None:
    l_src, items, n = _survey(1)
    clean = calibrate(l_src, items, n)
    items = items.copy()
    items[7] += 400.0  # a dump the layers do not show
    fit = calibrate(l_src, items, n)
    assert fit.excess_cells == 1
    assert fit.scale == pytest.approx(clean.scale, rel=0.02)
    assert fit.background == pytest.approx(clean.background, abs=0.01)
    assert far_above(items, n * fit.modelled_rate(l_src))[7]


def test_no_signal_explains_nothing() -> None:
    rng = np.random.default_rng(3)
    l_src = rng.gamma(0.8, 300.0, 300)
    n = np.full(300, 10.0)
    items = rng.poisson(n * 0.5).astype(float)
    fit = calibrate(l_src, items, n)
    assert fit.deviance_explained < 0.03
    assert fit.scale_lo == 0.0  # the interval does not exclude "no link"


def test_track_folds_split_every_observation_once() -> None:
    rng = np.random.default_rng(4)
    cell = rng.integers(0, 50, 1000)
    items = rng.poisson(1.0, 1000).astype(float)
    track = np.array([f"v{k % 7}" for k in range(1000)])
    cells = np.arange(50)
    folds = track_folds(cell, items, track, cells)
    assert len(folds) == 2
    for train_items, train_obs, test_items, test_obs in folds:
        np.testing.assert_allclose(train_items + test_items, np.bincount(cell, weights=items, minlength=50))
        np.testing.assert_allclose(train_obs + test_obs, np.bincount(cell, minlength=50))
    np.testing.assert_allclose(folds[0][2], folds[1][0])  # one fold's test half is the other's training half
    assert track_folds(cell, items, np.full(1000, "one"), cells) == []
