"""Calibration of modelled sources against observed litter: mixture fit, intervals, excess cells, folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from plastic_hotspots.maps.inputs.observations import Observations
from plastic_hotspots.maps.survey import fusion
from plastic_hotspots.maps.survey.density import observed_density
from plastic_hotspots.maps.survey.fusion import (
    block_any,
    block_max,
    calibrate,
    far_above,
    track_folds,
    write_fusion_report,
)
from plastic_hotspots.records import GridSpec


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
    assert far_above(items, n, fit.modelled_rate(l_src), fit)[7]
    assert fit.deviance_explained > 0.5  # the dump is inside the fit, not left out of it or of its measure


def test_no_signal_explains_nothing() -> None:
    rng = np.random.default_rng(3)
    l_src = rng.gamma(0.8, 300.0, 300)
    n = np.full(300, 10.0)
    items = rng.poisson(n * 0.5).astype(float)
    fit = calibrate(l_src, items, n)
    assert 0.0 <= fit.deviance_explained < 0.03
    assert fit.scale_lo == 0.0  # the interval does not exclude "no link"
    assert not fit.explains_survey
    assert "not converted to kg/yr" in fit.summary()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.01), st.integers(0, 5), st.sampled_from([0.3, 3.0, 1e4]))
def test_the_fit_is_never_worse_than_its_nested_null(
    seed: int, link: float, dumps: int, spread: float
) -> None:
    """Whatever the counts (a link or none, dumps, overdispersion), the null is never better in sample."""
    rng = np.random.default_rng(seed)
    cells = 120
    l_src = rng.gamma(0.8, 300.0, cells)
    n = rng.integers(1, 25, cells).astype(float)
    rate = rng.gamma(spread, (0.2 + link * l_src) / spread)
    items = rng.poisson(n * rate).astype(float)
    items[rng.choice(cells, dumps, replace=False)] += rng.integers(50, 500, dumps)
    fit = calibrate(l_src, items, n)
    assert fit.deviance <= fit.null_deviance + 1e-6
    assert 0.0 <= fit.deviance_explained <= 1.0
    assert np.isfinite([fit.scale, fit.background, fit.shape, fit.source_share]).all()


def test_dumps_are_found_inside_the_fit_over_many_surveys() -> None:
    """Planted dumps are flagged and clean cells are not, while the link stays where it was planted."""
    found = false = 0
    for seed in range(10):
        l_src, items, n = _survey(seed)
        items = items.copy()
        dumps = np.random.default_rng(100 + seed).choice(items.size, 3, replace=False)
        items[dumps] += n[dumps] * 3.0  # three items per photo more than the layers say
        fit = calibrate(l_src, items, n)
        flagged = far_above(items, n, fit.modelled_rate(l_src), fit)
        found += int(flagged[dumps].sum())
        false += int(flagged.sum() - flagged[dumps].sum())
        assert fit.scale == pytest.approx(0.004, rel=0.1)
    assert found >= 27, (found, false)
    assert false <= 3, (found, false)


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


def test_track_folds_follow_the_order_of_the_cells_given() -> None:
    rng = np.random.default_rng(6)
    cell = rng.integers(0, 80, 2000)
    items = rng.poisson(1.0, 2000).astype(float)
    track = np.array([f"v{k % 5}" for k in range(2000)])
    cells = np.arange(0, 80, 2)  # half the observed cells
    shuffled = rng.permutation(cells)
    for ordered, unordered in zip(
        track_folds(cell, items, track, cells), track_folds(cell, items, track, shuffled), strict=True
    ):
        position = np.argsort(shuffled)
        for a, b in zip(ordered, unordered, strict=True):
            np.testing.assert_array_equal(a, b[position])
    test_obs = track_folds(cell, items, track, cells)[0][3]
    in_fold = np.isin(track, ["v0", "v2", "v4"]) & (cell % 2 == 0)  # fold 0 tests tracks 0, 2, 4
    np.testing.assert_array_equal(test_obs, np.bincount(cell[in_fold] // 2, minlength=40))
    assert track_folds(cell, items, track, np.array([], dtype=np.int64))[0][0].size == 0


def _block_reference(values: np.ndarray, mask: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    out_h, out_w = -(-values.shape[0] // factor), -(-values.shape[1] // factor)
    top, anywhere = np.full((out_h, out_w), np.nan), np.zeros((out_h, out_w), dtype=bool)
    for i in range(out_h):
        for j in range(out_w):
            block = np.s_[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
            inside = values[block][mask[block] & ~np.isnan(values[block])]
            anywhere[i, j] = mask[block].any()
            if inside.size:
                top[i, j] = inside.max()
    return top, anywhere


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 7), st.integers(0, 10_000))
def test_block_max_and_any_equal_a_loop_over_blocks(height: int, width: int, factor: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(height, width))
    values[rng.random(values.shape) < 0.1] = np.nan
    mask = rng.random(values.shape) < 0.5
    top, anywhere = _block_reference(values, mask, factor)
    np.testing.assert_array_equal(block_max(values, mask, factor), top)
    np.testing.assert_array_equal(block_any(mask, factor), anywhere)
    if factor == 1:
        np.testing.assert_array_equal(block_max(values, mask, 1), np.where(mask, values, np.nan))


def test_fusion_figure_of_a_grid_larger_than_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(8)
    shape = (90, 130)
    rows, cols = rng.integers(40, 50, 600), rng.integers(0, 130, 600)
    obs = Observations(
        x=np.zeros(600),
        y=np.zeros(600),
        items=rng.poisson(2.0, 600).astype(float),
        track=np.array(["a", "b"] * 300),
        effort_km=np.full(600, 0.01),
    )
    density = observed_density(rows, cols, obs, shape, min_observations=2, prior_strength=None, interval=0.9)
    basin = np.ones(shape, dtype=bool)
    l_src = rng.gamma(1.0, 1.0, shape)
    at = np.flatnonzero(density.surveyed)
    fit = calibrate(
        l_src.ravel()[at], density.items.ravel()[at], density.observations.ravel()[at].astype(float)
    )
    grid = GridSpec(
        crs="EPSG:32647", west=500_000.0, north=2_000_000.0, cell_size=100.0, width=130, height=90
    )
    rates = [density.at(name, at) for name in ("rate", "rate_lo", "rate_hi")]
    args = (grid, fit, l_src, at, *rates)
    monkeypatch.setattr(fusion, "FIGURE_MAX_PIXELS", 44)  # drawn as 30 x 44 blocks of 3 x 3 cells
    from matplotlib.axes import Axes

    drawn: list[np.ndarray] = []
    imshow = Axes.imshow

    def spy(self: Axes, image: np.ndarray, *a: object, **k: object) -> object:
        drawn.append(np.asarray(image))
        return imshow(self, image, *a, **k)

    monkeypatch.setattr(Axes, "imshow", spy)
    json_path, png_path = write_fusion_report(tmp_path, *args, basin)
    modelled, _, observed = drawn
    assert modelled.shape == observed.shape == (30, 44)
    assert np.nanmax(modelled) == np.max(fit.modelled_rate(l_src))  # the hottest cell stays visible
    assert np.nanmax(observed) == np.nanmax(density.rate)
    assert np.isfinite(observed).sum() <= 4 * 44  # surveyed rows 40-49 fall in 4 rows of blocks
    assert json.loads(json_path.read_text())["calibration"]["cells"] == at.size
    with Image.open(png_path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (550, 1650)
    assert pixels.std() > 10
