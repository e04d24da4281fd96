"""Litter rate smoothed over neighbouring cells and shrunk towards the area rate, tuned on whole tracks.

A cell's rate (items per observation) is estimated from its own and its neighbours' items and
observations, weighted by a Gaussian kernel of ``bandwidth`` cells, and shrunk towards the area-wide
rate with a weight of ``strength`` observations::

    rate = (K * items + strength * area_rate) / (K * observations + strength)

Litter is spatially correlated (a market street is littered along its length), so neighbours carry
information about a cell that was seen little. How wide to look and how hard to shrink are chosen by
cross-validation over whole survey tracks (videos, walks, survey days): each fold leaves whole tracks
out, the candidates are fitted on the others, and each candidate predicts the left-out tracks' items
in the cells both saw; the candidate with the least Poisson deviance summed over the folds wins. The
area-wide rate itself (``strength`` infinite) is a candidate, so the choice is never worse than it on
the folds. Nothing is tuned to data it is then scored on.

The interval of a rate is the gamma posterior of the smoothed counts, widened by a dispersion factor
(the variance multiplied, the mean kept) chosen in the same folds: the least factor whose intervals
cover the left-out tracks' rates in at least the interval's share of cells (cells the left-out tracks
saw :data:`COVERAGE_MIN_OBSERVATIONS` times or more). Track-to-track differences in what a camera
sees make that factor large on some surveys; without it the intervals would claim a precision the
survey does not have.

Per-track detection levels (:func:`plastic_hotspots.maps.survey.density.track_adjusted_exposure`) are
still estimated and reported; as exposure for the rate they lost to plain observation counts under
this cross-validation on both survey cities tested (docs/hotspot-model.md), so the rate uses counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage, stats

from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.inputs.observations import Observations
from plastic_hotspots.maps.survey.density import (
    DensityGrid,
    estimate_prior_strength,
    poisson_deviance,
    sum_by,
    track_adjusted_exposure,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BANDWIDTHS_CELLS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
"""Candidate kernel widths (Gaussian sigma, in cells; 0: the cell alone)."""
STRENGTHS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0, 1000.0, math.inf)
"""Candidate shrinkage weights of the area rate, in observations (infinite: the area rate alone)."""
DISPERSIONS: tuple[float, ...] = tuple(float(2 ** (i / 4)) for i in range(-8, 41))
"""Candidate interval scalings (variance multipliers), 1/4 to 1024: the least that covers is taken."""
MAX_FOLDS = 40
"""Up to this many tracks, each is a fold of its own; more tracks are dealt into this many folds."""
COVERAGE_MIN_OBSERVATIONS = 3
"""Cells a left-out track saw fewer times than this are not used to judge interval coverage."""
TRUNCATE = 3.0
"""The kernel is cut at this many widths."""
FOLD_SEED = 0
"""Seed of the shuffle that deals tracks into folds (fixed: the same survey gives the same choice)."""


@dataclass(frozen=True, slots=True)
class SmoothingChoice:
    """The settings chosen for a survey and how they did on its own folds.

    Attributes:
        bandwidth_cells: Kernel width (Gaussian sigma) in cells; 0: no smoothing.
        strength: Weight of the area rate, in observations; ``inf``: the area rate everywhere.
        dispersion: Variance multiplier of the intervals (1: the posterior as it is).
        folds: Cross-validation folds (0: none, see ``note``).
        cv_deviance: Poisson deviance of the chosen settings on the left-out tracks, summed over folds.
        cv_area_deviance: The same for the area-wide rate.
        cv_coverage: Share of left-out cells whose rate the widened intervals covered.
        note: How the choice was made where cross-validation could not run; "" otherwise.
    """

    bandwidth_cells: float
    strength: float
    dispersion: float
    folds: int
    cv_deviance: float
    cv_area_deviance: float
    cv_coverage: float
    note: str = ""

    @property
    def deviance_ratio(self) -> float:
        """Cross-validated deviance of the chosen settings over the area-wide rate's (NaN without folds)."""
        if self.folds == 0 or self.cv_area_deviance <= 0:
            return math.nan
        return self.cv_deviance / self.cv_area_deviance

    def to_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready settings (an infinite strength as None: the area-wide rate)."""
        return {
            "bandwidth_cells": self.bandwidth_cells,
            "strength": None if math.isinf(self.strength) else self.strength,
            "dispersion": self.dispersion,
            "folds": self.folds,
            "cv_deviance": _finite_or_none(self.cv_deviance),
            "cv_area_deviance": _finite_or_none(self.cv_area_deviance),
            "cv_deviance_ratio": _finite_or_none(self.deviance_ratio),
            "cv_coverage": _finite_or_none(self.cv_coverage),
            "note": self.note,
        }

    def describe(self, cell_size_m: float | None = None) -> str:
        """One line for people: the settings and how they did on the folds."""
        if math.isinf(self.strength):
            what = "the area-wide rate"
        else:
            width = f"{self.bandwidth_cells:g} cells"
            if cell_size_m is not None:
                width += f" ({self.bandwidth_cells * cell_size_m:.0f} m)"
            what = f"kernel {width}, shrinkage {self.strength:g} observations"
        if self.folds == 0:
            return f"{what}; {self.note}"
        return (
            f"{what}; cross-validated over {self.folds} folds of whole tracks: deviance "
            f"{self.cv_deviance:.0f} against {self.cv_area_deviance:.0f} for the area-wide rate "
            f"(ratio {self.deviance_ratio:.2f}); interval variance x{self.dispersion:.3g}: they cover "
            f"{100 * self.cv_coverage:.0f} % of left-out cells"
        )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True, eq=False)
class _Window:
    """The observed cells inside a window of the grid wide enough for the widest kernel."""

    r0: int
    c0: int
    shape: tuple[int, int]
    flat: IntArray  # window-flat cell of each observation

    @classmethod
    def around(cls, rows: IntArray, cols: IntArray, pad: int) -> _Window:
        r0, c0 = int(rows.min()) - pad, int(cols.min()) - pad
        shape = (int(rows.max()) - r0 + pad + 1, int(cols.max()) - c0 + pad + 1)
        return cls(r0, c0, shape, (rows - r0) * shape[1] + (cols - c0))

    def grid(self, mask: npt.NDArray[np.bool_], weights: FloatArray | None = None) -> FloatArray:
        """Per-cell sums (counts without ``weights``) of the observations picked by ``mask``."""
        size = self.shape[0] * self.shape[1]
        w = None if weights is None else weights[mask]
        return np.bincount(self.flat[mask], weights=w, minlength=size).astype(np.float64).reshape(self.shape)


def _smooth(values: FloatArray, bandwidth: float) -> FloatArray:
    if bandwidth <= 0:
        return values
    return np.asarray(ndimage.gaussian_filter(values, bandwidth, mode="constant", truncate=TRUNCATE))


def _posterior(
    items: FloatArray, observations: FloatArray, area_rate: float, bandwidth: float, strength: float
) -> tuple[FloatArray, FloatArray]:
    """Gamma posterior ``(shape, rate)`` of each cell's litter rate from the smoothed counts."""
    if math.isinf(strength):
        total_items, total_obs = float(items.sum()), float(observations.sum())
        return np.full(items.shape, total_items), np.full(items.shape, max(total_obs, 1e-12))
    return _smooth(items, bandwidth) + strength * area_rate, _smooth(observations, bandwidth) + strength


def interval_bounds(
    shape: FloatArray, rate: FloatArray, dispersion: float, interval: float
) -> tuple[FloatArray, FloatArray]:
    """Central ``interval`` of a gamma posterior widened ``dispersion`` times (Garwood-style upper end).

    The lower end is the gamma's own quantile; the upper end that of one more item, so that a cell
    where nothing was seen still gets an upper bound above zero.
    """
    alpha = (1.0 - interval) / 2.0
    scale = dispersion / np.maximum(rate, 1e-12)
    lo = np.where(shape > 0, stats.gamma.ppf(alpha, np.maximum(shape / dispersion, 1e-12), scale=scale), 0.0)
    hi = stats.gamma.ppf(1.0 - alpha, (shape + 1.0) / dispersion, scale=scale)
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def leave_out_folds(track_codes: IntArray, max_folds: int = MAX_FOLDS) -> list[npt.NDArray[np.bool_]]:
    """Masks of the observations left out in each fold: one track a fold, or tracks dealt into folds."""
    tracks = np.unique(track_codes)
    if tracks.size <= max_folds:
        return [track_codes == t for t in tracks]
    shuffled = np.random.default_rng(FOLD_SEED).permutation(tracks)
    fold_of = np.empty(int(tracks.max()) + 1, dtype=np.int64)
    fold_of[shuffled] = np.arange(shuffled.size) % max_folds
    which = fold_of[track_codes]
    return [which == f for f in range(max_folds)]


def _folds(
    window: _Window, items: FloatArray, folds: Sequence[npt.NDArray[np.bool_]]
) -> Iterator[tuple[FloatArray, FloatArray, float, FloatArray, FloatArray]]:
    """Per fold: the kept tracks' items and observations per cell, their area rate, the left-out ones'."""
    for out in folds:
        keep = ~out
        if not keep.any() or not out.any():
            continue
        kept_items, kept_obs = window.grid(keep, items), window.grid(keep)
        area_rate = float(kept_items.sum() / kept_obs.sum())
        yield kept_items, kept_obs, area_rate, window.grid(out, items), window.grid(out)


def choose_smoothing(
    rows: IntArray,
    cols: IntArray,
    items: FloatArray,
    track_codes: IntArray,
    *,
    interval: float = 0.9,
    bandwidths: Sequence[float] = BANDWIDTHS_CELLS,
    strengths: Sequence[float] = STRENGTHS,
) -> SmoothingChoice:
    """Choose the kernel width, the shrinkage and the interval widening by cross-validation over tracks.

    Args:
        rows: Grid row of each observation.
        cols: Grid column of each observation.
        items: Items seen in each observation (finite, non-negative).
        track_codes: Track (0, 1, ...) of each observation.
        interval: Central probability of the intervals.
        bandwidths: Candidate kernel widths, in cells.
        strengths: Candidate shrinkage weights, in observations (``inf``: the area-wide rate).

    Returns:
        The choice. With a single track there is nothing to leave out: no smoothing and the
        empirical-Bayes shrinkage of the cells' spread are used, and ``note`` says so.
    """
    if items.size == 0:
        return SmoothingChoice(0.0, math.inf, 1.0, 0, math.nan, math.nan, math.nan, "no observations")
    if float(items.sum()) == 0.0:
        note = "no litter seen: the area-wide rate (0) is used"
        return SmoothingChoice(0.0, math.inf, 1.0, 0, math.nan, math.nan, math.nan, note)
    folds = leave_out_folds(track_codes)
    if len(folds) < 2:
        return _single_track_choice(rows, cols, items)
    pad = math.ceil(TRUNCATE * max(bandwidths, default=0.0)) + 1
    window = _Window.around(rows, cols, pad)
    candidates = [(0.0, math.inf)] + [(h, k) for h in bandwidths for k in strengths if not math.isinf(k)]
    deviance = dict.fromkeys(candidates, 0.0)
    for kept_items, kept_obs, area_rate, out_items, out_obs in _folds(window, items, folds):
        both = (out_obs > 0) & (kept_obs > 0)  # the cells both the kept and the left-out tracks saw
        y, n = out_items[both], out_obs[both]
        deviance[(0.0, math.inf)] += poisson_deviance(y, area_rate * n)
        for h in bandwidths:
            smooth_items, smooth_obs = _smooth(kept_items, h)[both], _smooth(kept_obs, h)[both]
            for k in strengths:
                if not math.isinf(k):
                    rate = (smooth_items + k * area_rate) / (smooth_obs + k)
                    deviance[(h, k)] += poisson_deviance(y, rate * n)
    best = min(candidates, key=lambda c: deviance[c])  # ties: the first, the area rate before any kernel
    dispersion, coverage = _choose_dispersion(window, items, folds, best, interval)
    return SmoothingChoice(
        bandwidth_cells=best[0],
        strength=best[1],
        dispersion=dispersion,
        folds=len(folds),
        cv_deviance=deviance[best],
        cv_area_deviance=deviance[(0.0, math.inf)],
        cv_coverage=coverage,
    )


def _single_track_choice(rows: IntArray, cols: IntArray, items: FloatArray) -> SmoothingChoice:
    window = _Window.around(rows, cols, 0)
    every = np.ones(items.size, dtype=np.bool_)
    strength = estimate_prior_strength(window.grid(every, items).ravel(), window.grid(every).ravel())
    note = "one track: no cross-validation; no smoothing, shrinkage from the spread between cells"
    return SmoothingChoice(0.0, strength, 1.0, 0, math.nan, math.nan, math.nan, note)


# The fold grids are built again here rather than kept from the deviance pass: four window-sized grids
# per fold for up to MAX_FOLDS folds would be held at once, and rebuilding them is a few bincounts.
def _choose_dispersion(
    window: _Window,
    items: FloatArray,
    folds: Sequence[npt.NDArray[np.bool_]],
    best: tuple[float, float],
    interval: float,
) -> tuple[float, float]:
    """The least widening whose intervals cover ``interval`` of the left-out rates, and the share covered."""
    covered = np.zeros(len(DISPERSIONS))
    judged = 0
    for kept_items, kept_obs, area_rate, out_items, out_obs in _folds(window, items, folds):
        judge = (out_obs >= COVERAGE_MIN_OBSERVATIONS) & (kept_obs > 0)
        if not judge.any():
            continue
        shape, rate = _posterior(kept_items, kept_obs, area_rate, *best)
        seen = out_items[judge] / out_obs[judge]
        for i, phi in enumerate(DISPERSIONS):
            lo, hi = interval_bounds(shape[judge], rate[judge], phi, interval)
            covered[i] += float(np.count_nonzero((seen >= lo) & (seen <= hi)))
        judged += int(judge.sum())
    if judged == 0:
        return 1.0, math.nan
    share = covered / judged
    enough = np.flatnonzero(share >= interval)
    i = int(enough[0]) if enough.size else len(DISPERSIONS) - 1
    return DISPERSIONS[i], float(share[i])


@dataclass(frozen=True, slots=True, eq=False)
class SmoothedRates:
    """Rates of the observed cells under a :class:`SmoothingChoice`.

    Attributes:
        rate: Posterior mean rate of each observed cell (items per observation).
        rate_lo: Lower end of its widened interval.
        rate_hi: Upper end.
        area_rate: Items per observation over the whole survey.
    """

    rate: FloatArray
    rate_lo: FloatArray
    rate_hi: FloatArray
    area_rate: float


def smoothed_rates(
    rows: IntArray,
    cols: IntArray,
    items: FloatArray,
    choice: SmoothingChoice,
    width: int,
    interval: float = 0.9,
) -> tuple[IntArray, SmoothedRates]:
    """The rates of the cells with observations under ``choice``.

    Args:
        rows: Grid row of each observation.
        cols: Grid column of each observation.
        items: Items seen in each observation.
        choice: The settings (:func:`choose_smoothing`).
        width: Columns of the grid (for the flat cell index).
        interval: Central probability of the intervals.

    Returns:
        ``(cells, rates)``: the flat grid index of each cell with observations (ascending) and its rates.
    """
    pad = math.ceil(TRUNCATE * choice.bandwidth_cells) + 1
    window = _Window.around(rows, cols, pad)
    every = np.ones(items.size, dtype=np.bool_)
    cell_items, cell_obs = window.grid(every, items), window.grid(every)
    total = float(cell_obs.sum())
    area_rate = float(cell_items.sum() / total) if total > 0 else 0.0
    shape, rate = _posterior(cell_items, cell_obs, area_rate, choice.bandwidth_cells, choice.strength)
    seen = np.flatnonzero(cell_obs.ravel() > 0)
    s, r = shape.ravel()[seen], rate.ravel()[seen]
    lo, hi = interval_bounds(s, r, choice.dispersion, interval)
    wr, wc = np.divmod(seen, window.shape[1])
    cells = (wr + window.r0).astype(np.int64) * width + (wc + window.c0)
    return cells, SmoothedRates(rate=s / r, rate_lo=lo, rate_hi=hi, area_rate=area_rate)


def smoothed_density(
    rows: IntArray,
    cols: IntArray,
    obs: Observations,
    shape: tuple[int, int],
    *,
    min_observations: int,
    interval: float = 0.9,
) -> tuple[DensityGrid, SmoothingChoice]:
    """The survey's density on a grid, its rates smoothed and shrunk as cross-validation chose.

    Cells with fewer than ``min_observations`` observations are "not surveyed" (rate NaN), never clean.
    Per-track detection levels are estimated and kept in ``track_effects``.

    Raises:
        LayerError: An item count is missing (NaN), infinite or negative.
    """
    items = np.asarray(obs.items, dtype=np.float64)
    bad = ~np.isfinite(items) | (items < 0)
    if bad.any():
        raise LayerError(
            f"{int(bad.sum())} of {items.size} observations have a missing, infinite or negative item count",
            hint="every observation needs its number of items (0 where nothing was seen)",
        )
    codes = np.unique(obs.track, return_inverse=True)[1].astype(np.int64).reshape(-1)
    choice = choose_smoothing(rows, cols, items, codes, interval=interval)
    flat = rows.astype(np.int64) * shape[1] + cols
    cells, where = np.unique(flat, return_inverse=True)
    where = where.astype(np.int64).reshape(-1)
    m = int(cells.size)
    count = np.bincount(where, minlength=m).astype(np.float64)
    if m:
        _, rates = smoothed_rates(rows, cols, items, choice, shape[1], interval)  # the same cells, ascending
        rate, lo, hi, area_rate = rates.rate, rates.rate_lo, rates.rate_hi, rates.area_rate
        _, _, effects = track_adjusted_exposure(where, items, obs.track, m, None, 1.0)
    else:
        rate = lo = hi = np.zeros(0)
        area_rate, effects = 0.0, {}
    surveyed = count >= max(min_observations, 1)
    density = DensityGrid(
        shape=(int(shape[0]), int(shape[1])),
        cells=cells.astype(np.int64),
        cell_observations=count.astype(np.int64),
        cell_effort_km=sum_by(where, obs.effort_km, m),
        cell_items=sum_by(where, items, m),
        cell_classes={
            name: np.bincount(where, weights=v, minlength=m).astype(np.float64)
            for name, v in obs.classes.items()
        },
        cell_rate=np.where(surveyed, rate, np.nan),
        cell_rate_lo=np.where(surveyed, lo, np.nan),
        cell_rate_hi=np.where(surveyed, hi, np.nan),
        cell_surveyed=surveyed,
        unobserved=None,
        area_rate=area_rate,
        prior_strength=choice.strength,
        track_effects=effects,
    )
    return density, choice
