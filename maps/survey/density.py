"""Effort-normalised litter density from survey observations.

Litter seen is proportional to effort: an observation is one image (photo or video frame) with the
number of items the detector found in it. Per cell we count observations, kilometres surveyed and
items, and estimate the rate (items per observation) with an empirical-Bayes gamma-Poisson model:
a cell's rate is shrunk towards the area-wide mean rate in proportion to how little effort it has,
and comes with a credible interval. Cells with too few observations are "not surveyed", never clean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from plastic_hotspots.maps.inputs.observations import Observations

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True, slots=True, eq=False)
class DensityGrid:
    """Per-cell effort and effort-normalised litter rate.

    Values are held for the observed cells only (a survey covers a small part of a basin, and a grid
    of tens of millions of cells would otherwise carry a dozen grid-sized arrays); the grid-shaped
    attributes (:attr:`observations`, :attr:`rate`, ...) are built on each access. Use
    :meth:`surveyed_cells` and :meth:`at` to read cells without building a grid.

    Attributes:
        shape: ``(rows, cols)`` of the grid.
        cells: Flat (row-major) indices of the cells with any observation, ascending.
        cell_observations: Images/frames seen in each of ``cells``.
        cell_effort_km: Kilometres surveyed in each of ``cells``.
        cell_items: Items counted in each of ``cells``.
        cell_classes: Items per class in each of ``cells``.
        cell_rate: Estimated items per observation in each of ``cells`` (shrunk towards
            ``area_rate`` where effort is low); NaN where not surveyed.
        cell_rate_lo: Lower end of the credible interval, likewise.
        cell_rate_hi: Upper end, likewise.
        cell_surveyed: Which of ``cells`` have at least the minimum number of observations.
        unobserved: ``(rate, rate_lo, rate_hi)`` of the cells without observations where every cell
            counts as surveyed (a minimum of 0 observations: they carry the prior); None where they
            are not surveyed (rates NaN).
        area_rate: Area-wide mean items per observation.
        prior_strength: Weight of the area-wide rate, in observations.
        track_effects: Detection level of each survey track relative to the mean (see
            :func:`track_adjusted_exposure`); the rates are per observation of an average track.
    """

    shape: tuple[int, int]
    cells: IntArray
    cell_observations: IntArray
    cell_effort_km: FloatArray
    cell_items: FloatArray
    cell_classes: Mapping[str, FloatArray]
    cell_rate: FloatArray
    cell_rate_lo: FloatArray
    cell_rate_hi: FloatArray
    cell_surveyed: BoolArray
    unobserved: tuple[float, float, float] | None
    area_rate: float
    prior_strength: float
    track_effects: Mapping[str, float] = field(default_factory=dict)

    def observed_cells(self) -> IntArray:
        """Flat indices of the cells with any observation, ascending (:attr:`cells`)."""
        return self.cells

    def surveyed_cells(self) -> IntArray:
        """Flat indices of the surveyed cells, ascending (every cell where all count as surveyed)."""
        if self.unobserved is not None:
            return np.arange(self.shape[0] * self.shape[1], dtype=np.int64)
        return self.cells[self.cell_surveyed]

    def _per_cell(self, name: str) -> tuple[npt.NDArray[np.generic], float | bool]:
        rates = self.unobserved or (np.nan, np.nan, np.nan)
        table: dict[str, tuple[npt.NDArray[np.generic], float | bool]] = {
            "observations": (self.cell_observations, 0),
            "effort_km": (self.cell_effort_km, 0.0),
            "items": (self.cell_items, 0.0),
            "rate": (self.cell_rate, rates[0]),
            "rate_lo": (self.cell_rate_lo, rates[1]),
            "rate_hi": (self.cell_rate_hi, rates[2]),
            "surveyed": (self.cell_surveyed, self.unobserved is not None),
        }
        if name not in table:
            raise ValueError(f"no per-cell value {name!r}; one of {', '.join(table)}")
        return table[name]

    def at(self, name: str, flat: IntArray) -> npt.NDArray[Any]:
        """Values of ``name`` (e.g. ``"rate_lo"``) at the flat cells ``flat``, as on the grid."""
        values, fill = self._per_cell(name)
        return sparse_values_at(self.cells, values, flat, fill)

    def _grid(self, name: str) -> npt.NDArray[np.generic]:
        values, fill = self._per_cell(name)
        return _on_grid(self.cells, values, self.shape, fill)

    @property
    def observations(self) -> IntArray:
        """Images/frames seen per cell (a grid, built on access)."""
        return self._grid("observations")  # type: ignore[return-value]

    @property
    def effort_km(self) -> FloatArray:
        """Kilometres surveyed per cell (a grid, built on access)."""
        return self._grid("effort_km")  # type: ignore[return-value]

    @property
    def items(self) -> FloatArray:
        """Items counted per cell (a grid, built on access)."""
        return self._grid("items")  # type: ignore[return-value]

    @property
    def classes(self) -> dict[str, FloatArray]:
        """Items per class per cell (grids, built on access)."""
        return {name: _on_grid(self.cells, v, self.shape, 0.0) for name, v in self.cell_classes.items()}

    @property
    def rate(self) -> FloatArray:
        """Estimated items per observation per cell; NaN where not surveyed (a grid, built on access)."""
        return self._grid("rate")  # type: ignore[return-value]

    @property
    def rate_lo(self) -> FloatArray:
        """Lower end of the credible interval per cell (a grid, built on access)."""
        return self._grid("rate_lo")  # type: ignore[return-value]

    @property
    def rate_hi(self) -> FloatArray:
        """Upper end of the credible interval per cell (a grid, built on access)."""
        return self._grid("rate_hi")  # type: ignore[return-value]

    @property
    def surveyed(self) -> BoolArray:
        """Cells with at least the minimum number of observations (a grid, built on access)."""
        return self._grid("surveyed")  # type: ignore[return-value]


def sparse_values_at(
    cells: IntArray, values: npt.NDArray[ScalarT], flat: npt.ArrayLike, fill: float
) -> npt.NDArray[ScalarT]:
    """Values of a layer held on some cells (ascending flat ``cells``) at the flat indices ``flat``.

    ``fill`` where ``flat`` is not one of ``cells``; the result has ``values``' dtype.
    """
    where = np.asarray(flat, dtype=np.int64)
    out = np.full(where.shape, fill, dtype=values.dtype)
    if cells.size:
        pos = np.minimum(np.searchsorted(cells, where), cells.size - 1)
        hit = cells[pos] == where
        out[hit] = values[pos[hit]]
    return out


def bin_to_cells(rows: IntArray, cols: IntArray, weights: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Sum ``weights`` into the cells ``(rows, cols)`` of a grid of ``shape``."""
    flat = rows * shape[1] + cols
    return np.bincount(flat, weights=weights, minlength=shape[0] * shape[1]).reshape(shape).astype(np.float64)


def shrunk_rate(
    items: FloatArray,
    observations: FloatArray,
    area_rate: float,
    prior_strength: float,
    interval: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gamma-Poisson posterior mean rate and central credible interval per cell.

    Prior ``Gamma(shape=area_rate x k, rate=k)`` with ``k = prior_strength`` observations; posterior
    ``Gamma(shape + items, rate + observations)``.
    """
    a0 = max(area_rate, 1e-9) * prior_strength
    shape = a0 + items
    rate_param = prior_strength + observations
    mean = shape / rate_param
    tail = (1.0 - interval) / 2.0
    shape_b, rate_b = np.broadcast_arrays(
        np.asarray(shape, dtype=np.float64), np.asarray(rate_param, dtype=np.float64)
    )
    lo = np.empty(shape_b.shape)
    hi = np.empty(shape_b.shape)
    # Cells without data all share the prior's interval: compute it once, the quantiles only where data is.
    data = (shape_b != a0) | (rate_b != prior_strength)
    for where, a, b in (
        (data, shape_b[data], rate_b[data]),
        (~data, np.array([a0]), np.array([prior_strength])),
    ):
        if a.size:
            lo[where] = stats.gamma.ppf(tail, a, scale=1.0 / b)
            hi[where] = stats.gamma.ppf(1.0 - tail, a, scale=1.0 / b)
    return mean, lo, hi


def observed_density(
    rows: IntArray,
    cols: IntArray,
    obs: Observations,
    shape: tuple[int, int],
    *,
    min_observations: int,
    prior_strength: float | None,
    interval: float,
    prior_floor: float = 1.0,
) -> DensityGrid:
    """Aggregate observations already located in cells into an effort-normalised density grid.

    Args:
        rows: Row of each observation's cell.
        cols: Column of each observation's cell.
        obs: The observations.
        shape: Grid shape.
        min_observations: Cells with fewer observations are not surveyed.
        prior_strength: Weight of the area-wide rate, in observations; None estimates it from the
            spread between cells (:func:`estimate_prior_strength`), never below ``prior_floor``.
        interval: Central probability of the credible interval.
        prior_floor: Least estimated prior strength.

    Returns:
        The density grid.
    """
    # Everything is computed on the cells with observations (a survey covers a small part of a basin)
    # and only spread onto the grid at the end.
    cells, where = np.unique(rows * shape[1] + cols, return_inverse=True)
    cells = cells.astype(np.int64)
    where = where.astype(np.int64).reshape(-1)
    m = int(cells.size)
    count = np.bincount(where, minlength=m).astype(np.float64)
    items = sum_by(where, obs.items, m)
    total_obs = float(count.sum())
    area_rate = float(items.sum() / total_obs) if total_obs > 0 else 0.0
    exposure, strength, effects = _exposure_on_cells(
        where, obs.items, obs.track, m, prior_strength, prior_floor
    )
    mean, lo, hi = shrunk_rate(items, exposure, area_rate, strength, interval)
    surveyed_here = count >= min_observations
    unobserved: tuple[float, float, float] | None = None
    if min_observations <= 0:  # every cell is surveyed: the cells without data carry the prior
        lo_hi = shrunk_rate(np.zeros(1), np.zeros(1), area_rate, strength, interval)
        unobserved = (float(lo_hi[0][0]), float(lo_hi[1][0]), float(lo_hi[2][0]))
    missing = unobserved or (np.nan, np.nan, np.nan)
    rate, rate_lo, rate_hi = (
        np.where(surveyed_here, v, fill) for v, fill in zip((mean, lo, hi), missing, strict=True)
    )
    return DensityGrid(
        shape=(int(shape[0]), int(shape[1])),
        cells=cells,
        cell_observations=count.astype(np.int64),
        cell_effort_km=sum_by(where, obs.effort_km, m),
        cell_items=items,
        cell_classes={name: sum_by(where, v, m) for name, v in obs.classes.items()},
        cell_rate=rate,
        cell_rate_lo=rate_lo,
        cell_rate_hi=rate_hi,
        cell_surveyed=surveyed_here,
        unobserved=unobserved,
        area_rate=area_rate,
        prior_strength=strength,
        track_effects=effects,
    )


def _on_grid(
    cells: IntArray, values: npt.NDArray[ScalarT], shape: tuple[int, int], fill: float
) -> npt.NDArray[ScalarT]:
    """``values`` at the flat ``cells`` of a grid of ``shape`` that holds ``fill`` elsewhere."""
    if fill == 0:
        out = np.zeros(shape[0] * shape[1], dtype=values.dtype)  # calloc: pages never written cost nothing
    else:
        out = np.full(shape[0] * shape[1], fill, dtype=values.dtype)
    out[cells] = values
    return out.reshape(shape)


def sum_by(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """Sum of ``weights`` per value of ``index`` (``0 .. size - 1``), as float64."""
    return np.asarray(np.bincount(index, weights=weights, minlength=size), dtype=np.float64)


def track_adjusted_exposure(
    cell: IntArray,
    items: FloatArray,
    track: npt.NDArray[np.str_],
    cells: int,
    prior_strength: float | None,
    prior_floor: float,
    iterations: int = 100,
) -> tuple[FloatArray, float, dict[str, float]]:
    """Exposure per cell with each survey track's own detection level taken out.

    Tracks differ in how much litter they see for reasons that are not the place: camera, light,
    speed, day, the detector's confidence on that footage. Items are modelled as
    ``Poisson(rate[cell] x effect[track])``; cell rates are gamma-shrunk towards the area mean and
    track effects towards 1, each with an empirical-Bayes strength, and the two are fitted in turn.
    A cell's exposure is then the sum of its observations' track effects; a new survey is predicted
    with effect 1 (the observation-weighted mean effect).

    Args:
        cell: Flat cell index of each observation.
        items: Items of each observation.
        track: Track of each observation.
        cells: Number of cells.
        prior_strength: Fixed cell prior strength, or None to estimate it.
        prior_floor: Least estimated cell prior strength.
        iterations: Most alternating updates.

    Returns:
        ``(exposure per cell, cell prior strength, effect per track)``.
    """
    used, where = np.unique(cell, return_inverse=True)
    exposure_used, strength, effects = _exposure_on_cells(
        where.astype(np.int64).reshape(-1),
        items,
        track,
        int(used.size),
        prior_strength,
        prior_floor,
        iterations,
    )
    exposure = np.zeros(cells, dtype=np.float64)
    exposure[used] = exposure_used
    return exposure, strength, effects


def _exposure_on_cells(
    cell: IntArray,
    items: FloatArray,
    track: npt.NDArray[np.str_],
    cells: int,
    prior_strength: float | None,
    prior_floor: float,
    iterations: int = 100,
) -> tuple[FloatArray, float, dict[str, float]]:
    """:func:`track_adjusted_exposure` on compact cell indices ``0 .. cells - 1`` (the used cells)."""
    count = np.bincount(cell, minlength=cells).astype(np.float64)
    seen = sum_by(cell, items, cells)
    total = float(count.sum())
    area_rate = float(seen.sum() / total) if total > 0 else 0.0

    def strength(exposure: FloatArray) -> float:
        if prior_strength is not None:
            return prior_strength
        return estimate_prior_strength(seen, exposure, floor=prior_floor)

    names, which = np.unique(track, return_inverse=True)
    if names.size < 2 or area_rate == 0.0:
        return count, strength(count), {str(n): 1.0 for n in names.tolist()}
    per_track = np.bincount(which, minlength=names.size).astype(np.float64)
    track_items = sum_by(which, items, names.size)
    effect: FloatArray = np.ones(names.size)
    exposure, k = count, strength(count)
    for _ in range(iterations):
        exposure = sum_by(cell, effect[which], cells)
        k = strength(exposure)
        rate = (area_rate * k + seen) / (k + exposure)
        expected = sum_by(which, rate[cell], names.size)
        tau = estimate_prior_strength(track_items, expected, floor=1.0)
        new = (track_items + tau) / (expected + tau)
        new /= float(np.average(new, weights=per_track))
        done = float(np.max(np.abs(new - effect))) < 1e-6
        effect = new
        if done:
            break
    exposure = sum_by(cell, effect[which], cells)
    return exposure, strength(exposure), dict(zip(names.tolist(), effect.tolist(), strict=True))


def poisson_deviance(observed: FloatArray, expected: FloatArray) -> float:
    """Poisson deviance ``2 sum(y log(y / mu) - (y - mu))`` (mu floored at 1e-9)."""
    mu = np.maximum(expected, 1e-9)
    y = observed
    term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(2 * np.sum(term - (y - mu)))


def estimate_prior_strength(items: FloatArray, observations: FloatArray, floor: float = 1.0) -> float:
    """Empirical-Bayes weight (in observations) of the area-wide rate, from the spread between cells.

    Method of moments for a gamma-Poisson model: the variance of the cells' raw rates is the true
    between-cell variance plus Poisson noise ``mean / n``. The prior's strength is ``mean / variance``:
    cells that truly differ little are shrunk hard towards the mean, cells that differ a lot hardly at
    all. ``floor`` keeps it positive.
    """
    keep = observations > 0
    if keep.sum() < 3:
        return floor
    n = observations[keep]
    rates = items[keep] / n
    mean = float(items[keep].sum() / n.sum())
    weights = n / n.sum()
    spread = float(np.sum(weights * (rates - mean) ** 2))
    noise = float(np.sum(weights * mean / n))
    between = spread - noise
    if between <= 0 or mean <= 0:
        return float(max(floor, n.sum()))  # no detectable difference between cells: trust the mean
    return float(max(floor, mean / between))
