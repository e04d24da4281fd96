"""Fusion of the modelled sources with observed litter: calibration, its fit, and a side-by-side figure.

Street litter seen per image is modelled as ``rate = background + scale x L_src``: ``L_src`` is the
mismanaged plastic the model puts in the cell (kg/yr), ``scale`` turns it into items per image and
``background`` is litter seen anywhere. Both are fitted by Poisson maximum likelihood to the item
counts of the surveyed cells, given each cell's number of observations, with intervals widened for
overdispersion (quasi-Poisson). The fit is reported in-sample and on held-out survey tracks, against
a single area-wide rate, so a user can see whether the model explains what was seen.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

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
        dispersion: Pearson chi-square per degree of freedom (1 for pure Poisson counts).
        cells: Surveyed cells used.
        excess_cells: Cells with far more litter than the fit expects (p < 1e-6), left out of the
            fit: sources the layers do not show, such as dumps.
        observations: Observations in them.
        items: Items counted in them.
        deviance: Poisson deviance of the calibrated model.
        null_deviance: Poisson deviance of a single area-wide rate.
        deviance_explained: ``1 - deviance / null_deviance``.
        spearman: Rank correlation of modelled and observed rates over the cells.
        held_out_deviance: Deviance on held-out tracks (model fitted on the other tracks), summed
            over folds; NaN when the survey has fewer than two tracks.
        held_out_null_deviance: The same for a single area-wide rate.
    """

    scale: float
    scale_lo: float
    scale_hi: float
    background: float
    background_lo: float
    background_hi: float
    interval: float
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
        return line

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain figures for JSON and provenance (NaN as None)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()
        }


def _fit(l_src: FloatArray, items: FloatArray, n: FloatArray) -> tuple[float, float]:
    """Poisson ML of ``items ~ Poisson(n x (b + s x l_src))`` with ``s, b >= 0``."""
    total_rate = float(items.sum() / n.sum())
    unit = float(l_src[l_src > 0].mean()) if (l_src > 0).any() else 1.0
    x = l_src / unit  # O(1) for a well-conditioned search

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        s, b = float(theta[0]), float(theta[1])
        mu = np.maximum(b + s * x, 1e-12)
        value = float(np.sum(n * mu - items * np.log(mu)))
        ratio = items / mu
        grad = np.array([np.sum((n - ratio) * x), np.sum(n - ratio)])
        return value, grad

    starts = (np.array([0.0, total_rate]), np.array([total_rate, max(total_rate * 0.1, 1e-6)]))
    best: tuple[float, FloatArray] | None = None
    for start in starts:
        result = optimize.minimize(
            objective, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None), (1e-12, None)]
        )
        if best is None or float(result.fun) < best[0]:
            best = (float(result.fun), np.asarray(result.x, dtype=np.float64))
    assert best is not None
    return float(best[1][0]) / unit, float(best[1][1])


EXCESS_P = 1e-6
"""A cell whose count is this improbable under the fit is an unmodelled source, not evidence about it."""


def far_above(items: FloatArray, expected: FloatArray) -> BoolArray:
    """Counts so far above their Poisson expectation (p < :data:`EXCESS_P`) that something else is there."""
    return np.asarray(stats.poisson.sf(items - 1, expected) < EXCESS_P, dtype=bool)


def _robust_fit(l_src: FloatArray, items: FloatArray, n: FloatArray) -> tuple[float, float, BoolArray]:
    """:func:`_fit`, refitted without cells far above it (e.g. a dump the layers do not show).

    Returns:
        ``(scale, background, kept)``: ``kept`` marks the cells the final fit used.
    """
    keep = np.ones(l_src.shape, dtype=bool)
    scale, background = _fit(l_src, items, n)
    for _ in range(5):
        new_keep = ~far_above(items, n * np.maximum(background + scale * l_src, 1e-12))
        if new_keep.sum() < 2 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
        scale, background = _fit(l_src[keep], items[keep], n[keep])
    return scale, background, keep


def _intervals(
    l_src: FloatArray, items: FloatArray, n: FloatArray, scale: float, background: float, interval: float
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Quasi-Poisson Wald intervals of (scale, background) and the dispersion."""
    mu = np.maximum(background + scale * l_src, 1e-12)
    expected = n * mu
    dof = max(int(l_src.size) - 2, 1)
    dispersion = max(float(np.sum((items - expected) ** 2 / expected)) / dof, 1.0)
    design = np.column_stack([l_src, np.ones_like(l_src)])
    info = (design * (n / mu)[:, None]).T @ design  # expected Fisher information
    try:
        cov = np.linalg.inv(info) * dispersion
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        se = np.array([np.inf, np.inf])
    z = float(stats.norm.ppf(0.5 + interval / 2.0))
    s_int = (max(scale - z * se[0], 0.0), scale + z * se[0])
    b_int = (max(background - z * se[1], 0.0), background + z * se[1])
    return s_int, b_int, dispersion


def calibrate(
    l_src: FloatArray,
    items: FloatArray,
    observations: FloatArray,
    *,
    interval: float = 0.9,
    folds: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] | None = None,
) -> Calibration:
    """Fit ``rate = background + scale x l_src`` to surveyed cells and report the fit.

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
    scale, background, keep = _robust_fit(l_src, items, n)
    s_int, b_int, dispersion = _intervals(l_src[keep], items[keep], n[keep], scale, background, interval)
    modelled = background + scale * l_src
    area_rate = float(items.sum() / n.sum())
    deviance = poisson_deviance(items, n * modelled)
    null = poisson_deviance(items, n * area_rate)
    rho = float(stats.spearmanr(modelled, items / n).statistic) if l_src.size > 2 else float("nan")
    held, held_null = float("nan"), float("nan")
    if folds:
        held = held_null = 0.0
        for train_items, train_obs, test_items, test_obs in folds:
            fit_on = train_obs > 0
            if not fit_on.any():
                continue
            s, b, _ = _robust_fit(l_src[fit_on], train_items[fit_on], train_obs[fit_on])
            rate = float(train_items.sum() / train_obs.sum())
            test = test_obs > 0
            held += poisson_deviance(test_items[test], test_obs[test] * (b + s * l_src[test]))
            held_null += poisson_deviance(test_items[test], test_obs[test] * rate)
    return Calibration(
        scale=scale,
        scale_lo=s_int[0],
        scale_hi=s_int[1],
        background=background,
        background_lo=b_int[0],
        background_hi=b_int[1],
        interval=interval,
        dispersion=dispersion,
        cells=int(l_src.size),
        excess_cells=int((~keep).sum()),
        observations=int(n.sum()),
        items=float(items.sum()),
        deviance=deviance,
        null_deviance=null,
        deviance_explained=1.0 - deviance / null if null > 0 else float("nan"),
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
