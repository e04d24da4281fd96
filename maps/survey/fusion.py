"""Fusion of the modelled sources with observed litter: calibration, its fit, and a side-by-side figure.

Street litter seen per image is modelled as ``rate = background + scale x L_src``: ``L_src`` is the
mismanaged plastic the model puts in the cell (kg/yr), ``scale`` turns it into items per image and
``background`` is litter seen anywhere. Both are fitted by maximum likelihood to the item counts of
every surveyed cell, given each cell's number of observations. The likelihood is a mixture: most
cells' counts scatter around the modelled rate (a negative binomial, its shape fitted), and a share
of cells (fitted too) hold a source the layers do not show, a dump or a market, whose counts come
from a broad component far above the model. Such cells neither bend the link nor are left out of
the fit; a cell more likely than not to be one is flagged. The single area-wide rate is the model
with ``scale = 0``, nested in it: in sample the fit is never worse. The fit is also scored on
held-out survey tracks against a single area-wide rate, so a user can see whether the layers
explain what was seen.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.maps.io.results import FUSION_JSON, FUSION_PNG
from plastic_hotspots.maps.survey.density import poisson_deviance
from plastic_hotspots.records import GridSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
ScalarT = TypeVar("ScalarT", bound=np.generic)


EXPLAINS_MARGIN = 0.02
"""Share of the area-wide rate's held-out deviance the calibrated model must save to count as explaining.

On the Maha Oya the calibrated model and the area-wide rate scored 15,054 against 15,068 on one
extract of the same data and 15,064 against 15,050 on another: a gain of 0.1 % is a tie, not evidence.
"""


@dataclass(frozen=True, slots=True)
class Calibration:
    """Calibrated link between modelled mismanaged plastic and observed litter, with its fit.

    Attributes:
        scale: Items per observation per kg/yr of mismanaged plastic in the cell.
        scale_lo: Lower end of its interval.
        scale_hi: Upper end.
        background: Items per observation seen regardless of the modelled source.
        background_lo: Lower end of its interval.
        background_hi: Upper end.
        interval: Central probability of the intervals.
        shape: Negative-binomial shape of the counts of cells the layers describe (large: Poisson;
            small: what the layers miss varies much from cell to cell).
        source_share: Share of cells holding a source the layers do not show (the mixture's weight
            of its unmodelled-source component).
        source_rate: Mean rate (items per observation) of the unmodelled-source component.
        dispersion: Pearson chi-square per degree of freedom of the cells the layers describe,
            under the fitted likelihood (about 1 when the likelihood describes their spread).
        cells: Surveyed cells used (all of them: none is left out of the fit).
        excess_cells: Cells more likely than not to hold a source the layers do not show, such as
            a dump (the unmodelled-source component's posterior probability over 0.5).
        observations: Observations in them.
        items: Items counted in them.
        deviance: Twice the log-likelihood the fit falls short of the counts' own Poisson
            likelihood (the saturated reference).
        null_deviance: The same for the best single area-wide rate (the same mixture with
            ``scale = 0``), a model nested in this one.
        deviance_explained: ``1 - deviance / null_deviance``; never below 0 (the null is nested).
        spearman: Rank correlation of modelled and observed rates over the cells.
        held_out_deviance: Poisson deviance of the rates on held-out tracks (model fitted on the
            other tracks), summed over folds; NaN when the survey has fewer than two tracks.
        held_out_null_deviance: The same for a single area-wide rate.
    """

    scale: float
    scale_lo: float
    scale_hi: float
    background: float
    background_lo: float
    background_hi: float
    interval: float
    shape: float
    source_share: float
    source_rate: float
    dispersion: float
    cells: int
    excess_cells: int
    observations: int
    items: float
    deviance: float
    null_deviance: float
    deviance_explained: float
    spearman: float
    held_out_deviance: float = float("nan")
    held_out_null_deviance: float = float("nan")

    def modelled_rate(self, l_src: FloatArray) -> FloatArray:
        """Expected items per observation for modelled mismanaged plastic ``l_src`` (kg/yr)."""
        return self.background + self.scale * l_src

    @property
    def explains_survey(self) -> bool:
        """Whether the layers predict the survey: clearly better than one area-wide rate on held-out tracks.

        Clearly: a held-out deviance at least :data:`EXPLAINS_MARGIN` below the area-wide rate's (a
        smaller gain is within what the split of the tracks moves). Without held-out tracks (one
        track), whether the link's interval excludes zero.
        """
        if self.scale <= 0:
            return False
        if np.isfinite(self.held_out_deviance) and np.isfinite(self.held_out_null_deviance):
            return self.held_out_deviance < (1.0 - EXPLAINS_MARGIN) * self.held_out_null_deviance
        return self.scale_lo > 0

    def summary(self) -> str:
        """One line for people: the calibration and how well it fits."""
        line = (
            f"calibrated on {self.cells} surveyed cells ({self.observations} observations): "
            f"{self.scale:.3g} items per observation per kg/yr "
            f"[{self.scale_lo:.3g}, {self.scale_hi:.3g}], background {self.background:.3g}, "
            f"{self.excess_cells} cells far above it; "
            f"deviance explained {100 * self.deviance_explained:.0f} %, Spearman {self.spearman:.2f}"
        )
        if np.isfinite(self.held_out_deviance):
            line += (
                f"; held-out tracks: deviance {self.held_out_deviance:.0f} "
                f"vs {self.held_out_null_deviance:.0f} for one area-wide rate"
            )
        if not self.explains_survey:
            line += "; the layers do not explain the survey: observed litter is not converted to kg/yr"
        return line

    def to_dict(self) -> dict[str, float | int | bool | None]:
        """Plain figures for JSON and provenance (NaN as None)."""
        out: dict[str, float | int | bool | None] = {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()
        }
        out["explains_survey"] = self.explains_survey
        return out


def _nb_logpmf(items: FloatArray, mean: FloatArray, shape: float) -> FloatArray:
    """Log-probability of counts ``items`` under negative binomials of ``mean`` and ``shape``."""
    k, m = shape, np.maximum(mean, 1e-12)
    return np.asarray(
        special.gammaln(items + k)
        - special.gammaln(k)
        - special.gammaln(items + 1.0)
        + k * np.log(k / (k + m))
        + items * np.log(m / (k + m)),
        dtype=np.float64,
    )


SOURCE_FACTOR = 10.0
"""Mean rate of the unmodelled-source component: this many times the survey's area-wide rate.

It is fixed by the survey, not by the link, so that cells with such a source carry no weight in the
link's fit (a component tied to the modelled rate would pull the background up to meet a dump)."""
SOURCE_SHAPE = 0.5
"""Shape of the unmodelled-source component: broad, from a little above the model to far above it."""
MAX_SOURCE_SHARE = 0.5
"""Largest share of cells the unmodelled-source component may take (the model explains the rest)."""
LOG_SHAPE_BOUNDS = (-3.0, 12.0)
"""Search range of the logarithm of the main component's shape: from a wide spread to Poisson."""


@dataclass(frozen=True, slots=True)
class _Mixture:
    """A fitted likelihood: the link, the main component's shape and the unmodelled sources' share."""

    scale: float
    background: float
    shape: float
    share: float
    loglik: float


def source_rate(items: FloatArray, n: FloatArray) -> float:
    """Mean rate of the unmodelled-source component for a survey (:data:`SOURCE_FACTOR`)."""
    return SOURCE_FACTOR * max(float(items.sum() / n.sum()), 1e-9)


def _source_logpmf(items: FloatArray, n: FloatArray) -> FloatArray:
    """Log-probability of each cell's count under the unmodelled-source component (fixed by the survey)."""
    return _nb_logpmf(items, n * source_rate(items, n), SOURCE_SHAPE)


def _loglik(
    x: FloatArray,
    items: FloatArray,
    n: FloatArray,
    source: FloatArray,
    s: float,
    b: float,
    shape: float,
    share: float,
) -> float:
    """Log-likelihood of the mixture (``x``: the modelled source in units of the link's ``s``)."""
    return _loglik_grad(x, items, n, source, s, b, shape, share)[0]


def _loglik_grad(
    x: FloatArray,
    items: FloatArray,
    n: FloatArray,
    source: FloatArray,
    s: float,
    b: float,
    shape: float,
    share: float,
) -> tuple[float, FloatArray]:
    """Log-likelihood of the mixture and its gradient in ``(s, log b, log shape, share)``.

    ``source`` is :func:`_source_logpmf` of the counts: it does not depend on the parameters, so a fit
    computes it once.
    """
    k = shape
    m = n * np.maximum(b + s * x, 1e-12)
    main = _nb_logpmf(items, m, k)
    d_main_dm = items / m - (items + k) / (k + m)
    d_main_dk = special.digamma(items + k) - special.digamma(k) + np.log(k / (k + m)) + (m - items) / (k + m)
    if share <= 0:
        w = np.ones(items.shape)
        d_share = float(np.sum(np.expm1(np.minimum(source - main, 50.0))))
        total = float(main.sum())
    else:
        both = np.logaddexp(math.log1p(-share) + main, math.log(share) + source)
        w = np.exp(math.log1p(-share) + main - both)  # each cell's weight of the modelled component
        d_share = float(np.sum(np.exp(source - both) - np.exp(main - both)))
        total = float(both.sum())
    grad = np.array(
        [
            float(np.sum(w * d_main_dm * n * x)),
            float(np.sum(w * d_main_dm * n)) * b,
            float(np.sum(w * d_main_dk)) * k,
            d_share,
        ]
    )
    return total, grad


def _fit_mixture(
    x: FloatArray, items: FloatArray, n: FloatArray, *, with_link: bool, start: _Mixture | None = None
) -> _Mixture:
    """Maximum likelihood of the mixture; with ``with_link`` False, the null (``scale = 0``).

    ``start`` (the null's fit, for the full model) is always among the starting points and kept if no
    other point beats it, so that the full model is never worse than its null in sample.
    """
    area = max(float(items.sum() / n.sum()), 1e-9)
    source = _source_logpmf(items, n)

    def unpack(theta: FloatArray) -> tuple[float, float, float, float]:
        if with_link:
            return float(theta[0]), math.exp(float(theta[1])), math.exp(float(theta[2])), float(theta[3])
        return 0.0, math.exp(float(theta[0])), math.exp(float(theta[1])), float(theta[2])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _loglik_grad(x, items, n, source, *unpack(theta))
        return -value, -(grad if with_link else grad[1:])

    log_b = (math.log(area) - 12.0, math.log(area) + 3.0)
    bounds = ([(0.0, None)] if with_link else []) + [log_b, LOG_SHAPE_BOUNDS, (0.0, MAX_SOURCE_SHARE)]
    starts = []
    for shape0 in (1.0, 100.0):
        null0 = [math.log(area), math.log(shape0), 0.05]
        starts += [np.array(([0.0] if with_link else []) + null0)]
        if with_link:
            starts.append(np.array([0.5 * area, math.log(0.5 * area), math.log(shape0), 0.05]))
    best = start
    if start is not None:
        starts.append(np.array([start.scale, math.log(start.background), math.log(start.shape), start.share]))
    for theta0 in starts:
        result = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
        s, b, shape, share = unpack(np.asarray(result.x, dtype=np.float64))
        ll = -float(result.fun)
        if best is None or ll > best.loglik:
            best = _Mixture(s, b, shape, share, ll)
    assert best is not None
    return best


def _fit(l_src: FloatArray, items: FloatArray, n: FloatArray) -> tuple[_Mixture, _Mixture, float]:
    """The null's and the link's maximum-likelihood mixtures, and the unit ``l_src`` was divided by.

    The link's ``scale`` is per unit of ``l_src / unit`` (a well-conditioned search); divide by ``unit``.
    """
    unit = float(l_src[l_src > 0].mean()) if (l_src > 0).any() else 1.0
    x = l_src / unit
    null = _fit_mixture(x, items, n, with_link=False)
    return null, _fit_mixture(x, items, n, with_link=True, start=null), unit


def source_probability(
    items: FloatArray, observations: FloatArray, modelled: FloatArray, calibration: Calibration
) -> FloatArray:
    """Each cell's probability of holding a source the layers do not show, given its count."""
    return _source_probability(
        items, observations, modelled, calibration.shape, calibration.source_share, calibration.source_rate
    )


def _source_probability(
    items: FloatArray, observations: FloatArray, modelled: FloatArray, shape: float, share: float, rate: float
) -> FloatArray:
    """:func:`source_probability` from the mixture's figures."""
    if share <= 0:
        return np.zeros(items.shape)
    m = observations * np.maximum(modelled, 1e-12)
    main = math.log1p(-share) + _nb_logpmf(items, m, shape)
    source = math.log(share) + _nb_logpmf(items, observations * rate, SOURCE_SHAPE)
    return np.asarray(np.exp(source - np.logaddexp(main, source)), dtype=np.float64)


def far_above(
    items: FloatArray, observations: FloatArray, modelled: FloatArray, calibration: Calibration
) -> BoolArray:
    """Cells more likely than not to hold a source the layers do not show, and above the model."""
    p = source_probability(items, observations, modelled, calibration)
    return np.asarray((p > 0.5) & (items > observations * modelled), dtype=bool)


def posterior_rate_lo(items: FloatArray, observations: FloatArray, calibration: Calibration) -> FloatArray:
    """Lower end of the rate of cells with an unmodelled source, given their counts.

    The gamma posterior under the unmodelled-source component (mean ``calibration.source_rate``,
    shape :data:`SOURCE_SHAPE`): with many observations, close to the counts' own rate.
    """
    interval = calibration.interval
    alpha = SOURCE_SHAPE + items
    beta = SOURCE_SHAPE / calibration.source_rate + observations
    return np.asarray(stats.gamma.ppf(0.5 - interval / 2.0, alpha, scale=1.0 / beta), dtype=np.float64)


def _intervals(
    x: FloatArray, items: FloatArray, n: FloatArray, fit: _Mixture, interval: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wald intervals of (scale per unit, background) from the observed information of the mixture.

    The information is the numerical second derivative of the log-likelihood in (scale, background),
    the shape and the share held at their fit.
    """
    theta = np.array([fit.scale, fit.background])
    step = np.maximum(1e-4 * np.abs(theta), 1e-7)
    source = _source_logpmf(items, n)

    def nll(t: FloatArray) -> float:
        s, b = max(float(t[0]), 0.0), max(float(t[1]), 1e-12)
        return -_loglik(x, items, n, source, s, b, fit.shape, fit.share)

    hess = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * step[i], np.eye(2)[j] * step[j]
            hess[i, j] = (
                nll(theta + e_i + e_j)
                - nll(theta + e_i - e_j)
                - nll(theta - e_i + e_j)
                + nll(theta - e_i - e_j)
            ) / (4.0 * step[i] * step[j])
    try:
        se = np.sqrt(np.clip(np.diag(np.linalg.inv(hess)), 0.0, None))
    except np.linalg.LinAlgError:
        se = np.array([np.inf, np.inf])
    if not np.all(np.isfinite(se)):
        se = np.array([np.inf, np.inf])
    z = float(stats.norm.ppf(0.5 + interval / 2.0))
    return (
        (max(fit.scale - z * se[0], 0.0), fit.scale + z * se[0]),
        (max(fit.background - z * se[1], 0.0), fit.background + z * se[1]),
    )


def _saturated_loglik(items: FloatArray) -> float:
    """Log-likelihood of Poisson counts at their own values: the reference of the deviances."""
    return float(np.sum(stats.poisson.logpmf(items, items)))


def calibrate(
    l_src: FloatArray,
    items: FloatArray,
    observations: FloatArray,
    *,
    interval: float = 0.9,
    folds: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] | None = None,
) -> Calibration:
    """Fit ``rate = background + scale x l_src`` to surveyed cells and report the fit.

    A maximum-likelihood fit over every surveyed cell with a negative-binomial likelihood: cells far
    above the model (dumps) are explained by its spread rather than left out, and the single
    area-wide rate is the nested null (``scale = 0``), so the fit is never worse than it in sample.

    Args:
        l_src: Modelled mismanaged plastic (kg/yr) of each surveyed cell.
        items: Items counted in each.
        observations: Observations in each (> 0).
        interval: Central probability of the parameter intervals.
        folds: Optional held-out check: per fold ``(train_items, train_obs, test_items, test_obs)``,
            each aligned with ``l_src`` (a split of the survey's tracks).

    Returns:
        The calibration with its in-sample and held-out fit.
    """
    n = observations.astype(np.float64)
    if l_src.size == 0 or float(n.sum()) == 0:
        raise ValueError("calibration needs at least one surveyed cell")
    null, fit, unit = _fit(l_src, items, n)
    s_int, b_int = _intervals(l_src / unit, items, n, fit, interval)
    scale = fit.scale / unit
    modelled = fit.background + scale * l_src
    saturated = _saturated_loglik(items)
    deviance, null_deviance = 2.0 * (saturated - fit.loglik), 2.0 * (saturated - null.loglik)
    m = n * np.maximum(modelled, 1e-12)
    p_source = _source_probability(items, n, modelled, fit.shape, fit.share, source_rate(items, n))
    main = p_source <= 0.5
    dof = max(int(main.sum()) - 2, 1)
    dispersion = float(np.sum((items - m)[main] ** 2 / (m + m * m / fit.shape)[main])) / dof
    rho = float(stats.spearmanr(modelled, items / n).statistic) if l_src.size > 2 else float("nan")
    held, held_null = float("nan"), float("nan")
    if folds:
        held = held_null = 0.0
        for train_items, train_obs, test_items, test_obs in folds:
            fit_on = train_obs > 0
            if not fit_on.any():
                continue
            _, part, part_unit = _fit(l_src[fit_on], train_items[fit_on], train_obs[fit_on])
            rate = float(train_items.sum() / train_obs.sum())
            test = test_obs > 0
            predicted = part.background + part.scale / part_unit * l_src[test]
            held += poisson_deviance(test_items[test], test_obs[test] * predicted)
            held_null += poisson_deviance(test_items[test], test_obs[test] * rate)
    return Calibration(
        scale=scale,
        scale_lo=s_int[0] / unit,
        scale_hi=s_int[1] / unit,
        background=fit.background,
        background_lo=b_int[0],
        background_hi=b_int[1],
        interval=interval,
        shape=fit.shape,
        source_share=fit.share,
        source_rate=source_rate(items, n),
        dispersion=dispersion,
        cells=int(l_src.size),
        excess_cells=int(((p_source > 0.5) & (items > m)).sum()),
        observations=int(n.sum()),
        items=float(items.sum()),
        deviance=deviance,
        null_deviance=null_deviance,
        deviance_explained=1.0 - deviance / null_deviance if null_deviance > 0 else float("nan"),
        spearman=rho if np.isfinite(rho) else float("nan"),
        held_out_deviance=held,
        held_out_null_deviance=held_null,
    )


def track_folds(
    cell: npt.NDArray[np.int64], items: FloatArray, track: npt.NDArray[np.str_], cells: npt.NDArray[np.int64]
) -> list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]]:
    """Two folds over the survey's tracks (alternate tracks in name order), binned onto ``cells``.

    Args:
        cell: Flat cell index of each observation.
        items: Items of each observation.
        track: Track of each observation.
        cells: The flat indices of the surveyed cells the calibration uses, in its order.

    Returns:
        ``[(train_items, train_obs, test_items, test_obs), ...]`` aligned with ``cells``; empty when
        there are fewer than two tracks.
    """
    names, track_index = np.unique(track, return_inverse=True)
    if names.size < 2:
        return []
    where = np.full(cell.shape, -1, dtype=np.int64)  # position of each observation's cell in ``cells``
    if cells.size:
        order = np.argsort(cells, kind="stable")
        at = np.minimum(np.searchsorted(cells, cell, sorter=order), cells.size - 1)
        found = cells[order[at]] == cell
        where[found] = order[at[found]]
    used = where >= 0
    fold = track_index.reshape(-1).astype(np.int64) % 2  # alternate tracks in name order
    out = []
    for k in (0, 1):
        test = used & (fold == k)
        train = used & (fold != k)
        m = cells.size
        out.append(
            (
                np.bincount(where[train], weights=items[train], minlength=m).astype(np.float64),
                np.bincount(where[train], minlength=m).astype(np.float64),
                np.bincount(where[test], weights=items[test], minlength=m).astype(np.float64),
                np.bincount(where[test], minlength=m).astype(np.float64),
            )
        )
    return out


FIGURE_MAX_PIXELS = 500
"""Most pixels per side of the maps in ``fusion.png``; larger grids are drawn block-reduced.

Each map of the 15 x 5 in figure at 110 dpi is about 450 px across: a finer array would only be
subsampled when drawn (dropping cells, hot ones included) at a cost in time and memory.
"""


def block_max(values: FloatArray, mask: BoolArray, factor: int) -> FloatArray:
    """Largest of ``values`` over the ``mask`` cells of each ``factor`` x ``factor`` block.

    NaN for blocks without a ``mask`` cell (NaN values are skipped); the last row and column of blocks
    may be partial. With ``factor`` 1 this is ``values`` where ``mask`` and NaN elsewhere.
    """
    return _block_reduce(values, mask, factor, np.fmax, np.nan)


def block_any(mask: BoolArray, factor: int) -> BoolArray:
    """Whether each ``factor`` x ``factor`` block (the last ones may be partial) holds a ``mask`` cell."""
    return _block_reduce(mask, mask, factor, np.logical_or, False)


def _block_reduce(
    values: npt.NDArray[ScalarT], mask: BoolArray, factor: int, ufunc: np.ufunc, fill: float
) -> npt.NDArray[ScalarT]:
    """``ufunc`` over each block of ``values`` where ``mask`` (``fill`` elsewhere and past the edges).

    A strip of rows at a time, so that no temporary has the size of the grid; rows are reduced first
    (whole rows at once), then columns.
    """
    height, width = values.shape
    out_h, out_w = -(-height // factor), -(-width // factor)
    out = np.empty((out_h, out_w), dtype=values.dtype)
    strip = max(1, (1 << 21) // (factor * out_w * factor))  # output rows per strip: ~16 MiB of float64
    for top in range(0, out_h, strip):
        bottom = min(top + strip, out_h)
        r0, r1 = top * factor, min(bottom * factor, height)
        part = np.full(((bottom - top) * factor, out_w * factor), fill, dtype=values.dtype)
        part[: r1 - r0, :width] = np.where(mask[r0:r1], values[r0:r1], fill)
        rows = ufunc.reduce(part.reshape(bottom - top, factor, out_w * factor), axis=1)
        out[top:bottom] = ufunc.reduce(rows.reshape(bottom - top, out_w, factor), axis=2)
    return out


def _sparse_block_max(
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    values: FloatArray,
    shape: tuple[int, int],
    factor: int,
) -> FloatArray:
    """:func:`block_max` of ``values`` given at the cells ``(rows, cols)`` only (NaN elsewhere)."""
    out_h, out_w = -(-shape[0] // factor), -(-shape[1] // factor)
    out = np.full(out_h * out_w, np.nan)
    np.fmax.at(out, (rows // factor) * out_w + cols // factor, values)
    return out.reshape(out_h, out_w)


def write_fusion_report(
    out_dir: Path,
    grid: GridSpec,
    calibration: Calibration,
    l_src: FloatArray,
    surveyed_cells: IntArray,
    observed_rate: FloatArray,
    observed_lo: FloatArray,
    observed_hi: FloatArray,
    basin: BoolArray,
) -> tuple[Path, Path]:
    """Write ``fusion.json`` (the fit) and ``fusion.png`` (modelled and observed side by side).

    Grids over :data:`FIGURE_MAX_PIXELS` cells a side are drawn block-reduced (the largest rate of
    each block, so that hot cells stay visible): a figure cannot show more pixels anyway.

    Args:
        out_dir: Folder to write into.
        grid: The grid.
        calibration: The fit.
        l_src: Modelled mismanaged plastic (kg/yr), a grid: the calibration turns it into items per
            observation.
        surveyed_cells: Flat indices of the surveyed cells, ascending.
        observed_rate: Observed items per observation at ``surveyed_cells``.
        observed_lo: Lower end of its interval there.
        observed_hi: Upper end there.
        basin: The basin's cells, a grid.

    Returns:
        The JSON and PNG paths.
    """
    json_path = _write_fusion_json(out_dir, calibration)
    rows, cols = np.divmod(np.asarray(surveyed_cells, dtype=np.int64), grid.width)
    modelled = calibration.modelled_rate(l_src[rows, cols])
    observed = np.asarray(observed_rate, dtype=np.float64)
    lo, hi = np.asarray(observed_lo, dtype=np.float64), np.asarray(observed_hi, dtype=np.float64)
    figure = _figure(grid, calibration, l_src, (rows, cols), modelled, (observed, lo, hi), basin)
    return json_path, _write_png(figure, out_dir)


def _write_fusion_json(out_dir: Path, calibration: Calibration) -> Path:
    """``fusion.json``: the calibration's figures and its one-line summary."""
    path = FUSION_JSON.path(out_dir)
    report = {"calibration": calibration.to_dict(), "summary": calibration.summary()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def _figure(
    grid: GridSpec,
    calibration: Calibration,
    l_src: FloatArray,
    cells: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    modelled: FloatArray,
    observed: tuple[FloatArray, FloatArray, FloatArray],
    basin: BoolArray,
) -> Figure:
    """The three panels: modelled map, observed map (one colour scale), observed against modelled.

    Args:
        grid: The grid.
        calibration: The fit.
        l_src: Modelled mismanaged plastic (kg/yr), a grid.
        cells: Rows and columns of the surveyed cells.
        modelled: Modelled rate at them.
        observed: Observed rate at them, with the lower and upper ends of its interval.
        basin: The basin's cells, a grid.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factor = max(1, -(-max(grid.height, grid.width) // FIGURE_MAX_PIXELS))
    rows, cols = cells
    norm = _rate_norm(np.concatenate([modelled[basin[rows, cols]], observed[0]]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), layout="constrained")
    extent = _block_extent(grid, factor)
    image = _draw_modelled_map(axes[0], calibration, l_src, basin, factor, extent, norm)
    _draw_observed_map(axes[1], cells, observed[0], grid, basin, factor, extent, norm)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[:2], shrink=0.8, label="items per image")
    _draw_observed_against_modelled(axes[2], calibration, modelled, observed)
    return fig


def _block_extent(grid: GridSpec, factor: int) -> tuple[float, float, float, float]:
    """``(west, east, south, north)`` of the grid drawn in ``factor`` x ``factor`` blocks (whole blocks)."""
    out_h, out_w = -(-grid.height // factor), -(-grid.width // factor)
    return (
        grid.west,
        grid.west + out_w * factor * grid.cell_size,
        grid.north - out_h * factor * grid.cell_size,
        grid.north,
    )


def _rate_norm(values: FloatArray) -> LogNorm:
    """One log colour scale for the modelled and observed rates ``values``, from their 1st percentile."""
    from matplotlib.colors import LogNorm

    positive = values[np.isfinite(values) & (values > 0)]
    vmin = float(np.percentile(positive, 1)) if positive.size else 1e-3
    vmax = float(positive.max()) if positive.size else 1.0
    return LogNorm(vmin=max(vmin, 1e-4), vmax=max(vmax, vmin * 10))


def _draw_modelled_map(
    ax: Axes,
    calibration: Calibration,
    l_src: FloatArray,
    basin: BoolArray,
    factor: int,
    extent: tuple[float, float, float, float],
    norm: LogNorm,
) -> AxesImage:
    """The modelled rate over the basin, each block's largest; the image (for the colour bar)."""
    if calibration.scale >= 0:  # the rate rises with L_src: a block's largest rate is at its largest L_src
        modelled_map = calibration.modelled_rate(block_max(l_src, basin, factor))
    else:
        modelled_map = block_max(calibration.modelled_rate(l_src), basin, factor)
    image = ax.imshow(modelled_map, extent=extent, norm=norm, cmap="magma_r", interpolation="nearest")
    ax.set_title("Modelled: items per image")
    return image


def _draw_observed_map(
    ax: Axes,
    cells: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    observed: FloatArray,
    grid: GridSpec,
    basin: BoolArray,
    factor: int,
    extent: tuple[float, float, float, float],
    norm: LogNorm,
) -> None:
    """The observed rate of the surveyed cells, each block's largest, over the basin in grey."""
    observed_map = _sparse_block_max(cells[0], cells[1], observed, grid.shape, factor)
    ax.imshow(
        np.where(block_any(basin, factor), 1.0, np.nan),
        extent=extent,
        cmap="Greys",
        vmin=0,
        vmax=5,
        interpolation="nearest",
    )
    ax.imshow(observed_map, extent=extent, norm=norm, cmap="magma_r", interpolation="nearest")
    ax.set_title("Observed (grey: not surveyed)")


def _draw_observed_against_modelled(
    ax: Axes,
    calibration: Calibration,
    modelled: FloatArray,
    observed: tuple[FloatArray, FloatArray, FloatArray],
) -> None:
    """Observed rate (with its interval) against modelled rate per surveyed cell, with the 1:1 line."""
    m, (o, lo, hi) = modelled, observed
    ax.errorbar(m, o, yerr=[np.clip(o - lo, 0, None), np.clip(hi - o, 0, None)], fmt="o", ms=3,
                alpha=0.6, elinewidth=0.6, color="#8a2d6b")  # fmt: skip
    top = float(max(np.nanmax(m), np.nanmax(hi))) if m.size else 1.0
    ax.plot([0, top], [0, top], color="0.4", lw=1, ls="--", label="1:1")
    ax.set_xlabel("modelled items per image")
    ax.set_ylabel("observed items per image (interval)")
    ax.set_title(
        f"{calibration.cells} cells, deviance explained {100 * calibration.deviance_explained:.0f} %, "
        f"Spearman {calibration.spearman:.2f}",
        fontsize=10,
    )
    ax.legend(loc="upper left")


def _write_png(fig: Figure, out_dir: Path) -> Path:
    """``fusion.png``: the figure at 110 dpi; the figure is closed."""
    import matplotlib.pyplot as plt

    path = FUSION_PNG.path(out_dir)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
