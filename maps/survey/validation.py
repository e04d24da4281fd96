"""How well a survey's density predicts tracks it has not seen: halves of the tracks fitted and scored.

A split fits the density on some tracks and predicts the item counts of the others in the cells both
saw (the rate times the scored tracks' observations there); the measure is the Poisson deviance.
Three predictions are scored: the density (:mod:`plastic_hotspots.maps.survey.smoothing`, its settings
chosen by cross-validation inside the fitted tracks only), one area-wide rate, and pLitter-style raw
counts (the fitted items per cell, scaled to the scored total: no effort). The intervals are judged on
the scored cells seen :data:`~plastic_hotspots.maps.survey.smoothing.COVERAGE_MIN_OBSERVATIONS` times or
more: the share whose scored rate lies inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.survey.density import poisson_deviance, sparse_values_at, sum_by
from plastic_hotspots.maps.survey.smoothing import (
    COVERAGE_MIN_OBSERVATIONS,
    SmoothingChoice,
    choose_smoothing,
    smoothed_rates,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HeldOutScore:
    """One split of the tracks: what was fitted, what was scored, and the three deviances.

    Attributes:
        seed: Seed of the split's permutation of the tracks.
        fitted_tracks: Tracks fitted.
        scored_tracks: Tracks scored.
        cells: Cells both halves saw (where the deviances are summed).
        model: Deviance of the density.
        area: Deviance of one area-wide rate.
        raw: Deviance of raw counts.
        coverage: Share of scored cells whose rate the density's intervals cover.
        coverage_cells: Cells judged for coverage.
        choice: The settings the fitted half chose for itself.
    """

    seed: int
    fitted_tracks: int
    scored_tracks: int
    cells: int
    model: float
    area: float
    raw: float
    coverage: float
    coverage_cells: int
    choice: SmoothingChoice

    @property
    def ratio(self) -> float:
        """The density's deviance over the area-wide rate's."""
        return self.model / self.area if self.area > 0 else float("nan")


def split_tracks(tracks: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """``(fitted, scored)``: the tracks permuted by ``default_rng(seed)``, at even and odd places."""
    order = np.random.default_rng(seed).permutation(np.asarray(list(tracks), dtype=object))
    return [str(t) for t in order[0::2]], [str(t) for t in order[1::2]]


def score_split(
    rows: IntArray,
    cols: IntArray,
    items: FloatArray,
    track: npt.NDArray[np.str_],
    fitted: Sequence[str],
    scored: Sequence[str],
    width: int,
    *,
    seed: int = 0,
    interval: float = 0.9,
) -> HeldOutScore:
    """Fit on the ``fitted`` tracks, score the ``scored`` ones (see the module docstring)."""
    fit = np.isin(track, list(fitted))
    held = np.isin(track, list(scored))
    codes = np.unique(track[fit], return_inverse=True)[1].astype(np.int64).reshape(-1)
    choice = choose_smoothing(rows[fit], cols[fit], items[fit], codes, interval=interval)
    cells, rates = smoothed_rates(rows[fit], cols[fit], items[fit], choice, width, interval)
    flat_fit = rows[fit].astype(np.int64) * width + cols[fit]
    fit_items = sum_by(
        np.searchsorted(cells, flat_fit), items[fit], cells.size
    )  # every fitted cell is in cells
    flat_held = rows[held].astype(np.int64) * width + cols[held]
    position = sparse_values_at(cells, np.arange(cells.size), flat_held, -1)  # -1: a cell the fit never saw
    both = position >= 0
    held_obs = np.bincount(position[both], minlength=cells.size).astype(np.float64)
    held_items = sum_by(position[both], items[held][both], cells.size)
    seen = held_obs > 0
    y, n = held_items[seen], held_obs[seen]
    raw_scale = float(y.sum()) / max(float(fit_items[seen].sum()), 1e-12)
    judge = held_obs >= COVERAGE_MIN_OBSERVATIONS
    rate_b = held_items[judge] / held_obs[judge]
    covered = (rate_b >= rates.rate_lo[judge]) & (rate_b <= rates.rate_hi[judge])
    return HeldOutScore(
        seed=seed,
        fitted_tracks=len(set(fitted)),
        scored_tracks=len(set(scored)),
        cells=int(seen.sum()),
        model=poisson_deviance(y, rates.rate[seen] * n),
        area=poisson_deviance(y, rates.area_rate * n),
        raw=poisson_deviance(y, fit_items[seen] * raw_scale),
        coverage=float(covered.mean()) if covered.size else float("nan"),
        coverage_cells=int(covered.size),
        choice=choice,
    )
