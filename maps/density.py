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

import numpy as np
import numpy.typing as npt
from scipy import stats

from maps.errors import LayerError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Observations:
    """Survey observations in the grid CRS, one per image or frame.

    Attributes:
        x: Easting of each observation, metres.
        y: Northing, metres.
        items: Litter items counted in it.
        track: Survey unit (video, walk, drive) each observation belongs to.
        effort_km: Distance surveyed by each observation (half the gaps to its track neighbours).
        classes: Per-class item counts, each aligned with ``items``.
        image: Image or frame name of each observation, where known.
        captured_at: ISO capture time of each observation, where known.
    """

    x: FloatArray
    y: FloatArray
    items: FloatArray
    track: npt.NDArray[np.str_]
    effort_km: FloatArray
    classes: Mapping[str, FloatArray] = field(default_factory=dict)
    image: npt.NDArray[np.str_] | None = None
    captured_at: npt.NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for name in ("y", "items", "track", "effort_km"):
            if getattr(self, name).shape[0] != n:
                raise LayerError(
                    f"observation column {name!r} has {getattr(self, name).shape[0]} rows, expected {n}"
                )
        for name, counts in self.classes.items():
            if counts.shape[0] != n:
                raise LayerError(f"class column {name!r} has {counts.shape[0]} rows, expected {n}")
        if n and float(np.min(self.items)) < 0:
            raise LayerError("item counts must be >= 0", hint="check the observations' `items` column")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, keep: BoolArray) -> Observations:
        """The observations where ``keep`` is true."""
        return Observations(
            x=self.x[keep],
            y=self.y[keep],
            items=self.items[keep],
            track=self.track[keep],
            effort_km=self.effort_km[keep],
            classes={k: v[keep] for k, v in self.classes.items()},
            image=None if self.image is None else self.image[keep],
            captured_at=None if self.captured_at is None else self.captured_at[keep],
        )


def track_effort_km(
    x: FloatArray, y: FloatArray, track: npt.NDArray[np.str_], order: FloatArray
) -> FloatArray:
    """Distance each observation represents, in km.

    Half the gap to the previous plus half to the next point of the same track (tracks ordered by
    ``order``, e.g. capture time). Gaps over 1 km are breaks in the survey and count nothing.
    """
    n = x.shape[0]
    effort = np.zeros(n, dtype=np.float64)
    if n == 0:
        return effort
    idx = np.lexsort((order, track))
    xs, ys, ts = x[idx], y[idx], track[idx]
    gaps = np.hypot(np.diff(xs), np.diff(ys))
    same = ts[1:] == ts[:-1]
    gaps = np.where(same & (gaps <= 1000.0), gaps, 0.0)
    half = gaps / 2.0
    sorted_effort = np.zeros(n, dtype=np.float64)
    sorted_effort[1:] += half
    sorted_effort[:-1] += half
    effort[idx] = sorted_effort / 1000.0
    return effort


@dataclass(frozen=True, slots=True, eq=False)
class DensityGrid:
    """Per-cell effort and effort-normalised litter rate (all arrays of the grid's shape).

    Attributes:
        observations: Images/frames seen per cell.
        effort_km: Kilometres surveyed per cell.
        items: Items counted per cell.
        classes: Items per class per cell.
        rate: Estimated items per observation (shrunk towards ``area_rate`` where effort is low);
            NaN where not surveyed.
        rate_lo: Lower end of the credible interval.
        rate_hi: Upper end.
        surveyed: Cells with at least ``min_observations``.
        area_rate: Area-wide mean items per observation.
        prior_strength: Weight of the area-wide rate, in observations.
    """

    observations: IntArray
    effort_km: FloatArray
    items: FloatArray
    classes: Mapping[str, FloatArray]
    rate: FloatArray
    rate_lo: FloatArray
    rate_hi: FloatArray
    surveyed: BoolArray
    area_rate: float
    prior_strength: float


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
    lo = stats.gamma.ppf(tail, shape, scale=1.0 / rate_param)
    hi = stats.gamma.ppf(1.0 - tail, shape, scale=1.0 / rate_param)
    return mean, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


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
    count = bin_to_cells(rows, cols, np.ones(len(obs)), shape)
    items = bin_to_cells(rows, cols, obs.items, shape)
    effort = bin_to_cells(rows, cols, obs.effort_km, shape)
    classes = {name: bin_to_cells(rows, cols, v, shape) for name, v in obs.classes.items()}
    total_obs = float(count.sum())
    area_rate = float(items.sum() / total_obs) if total_obs > 0 else 0.0
    if prior_strength is None:
        prior_strength = estimate_prior_strength(items.ravel(), count.ravel(), floor=prior_floor)
    mean, lo, hi = shrunk_rate(items, count, area_rate, prior_strength, interval)
    surveyed = count >= min_observations
    nan = np.full(shape, np.nan)
    return DensityGrid(
        observations=count.astype(np.int64),
        effort_km=effort,
        items=items,
        classes=classes,
        rate=np.where(surveyed, mean, nan),
        rate_lo=np.where(surveyed, lo, nan),
        rate_hi=np.where(surveyed, hi, nan),
        surveyed=surveyed,
        area_rate=area_rate,
        prior_strength=prior_strength,
    )


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
