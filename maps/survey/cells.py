"""Observed litter density from surveys: cells with effort, shrunk rates, intervals and hot spots.

``plastic-hotspots density OBSERVATIONS --cell-size M --out cells.gpkg`` reads the detector's per-image
table (``detect``'s ``.images.parquet``) or pLitter track GeoJSON, bins the observations into square cells
of a UTM grid, and writes one polygon per surveyed cell (EPSG:4326) with its effort, items, per-class
counts, the effort-normalised rate (smoothed over neighbouring cells and shrunk towards the area's
rate, both as cross-validation over whole tracks chose: :mod:`plastic_hotspots.maps.survey.smoothing`),
its interval, and the Getis-Ord Gi* statistic of the rate with its p-value and its Benjamini-Hochberg
q-value over the cells tested (:data:`GI_FDR`). Cells with little effort are flagged ``low_effort``, never
called clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy import stats
from shapely.geometry import LineString

from plastic_hotspots.maps.grid import grid_for_bounds, lonlat_to_grid, rowcol
from plastic_hotspots.maps.inputs.observations import observations_on_grid
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.survey.density import DensityGrid
from plastic_hotspots.maps.survey.smoothing import SmoothingChoice, smoothed_density
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SurveyDensity:
    """Density of a survey on a grid, with the grid and the observations' cells."""

    grid: GridSpec
    density: DensityGrid
    gi_z: FloatArray
    gi_p: FloatArray
    gi_q: FloatArray
    choice: SmoothingChoice


def benjamini_hochberg(p: FloatArray) -> FloatArray:
    """Benjamini-Hochberg q-values of the finite ``p`` (the p-values of the cells tested); NaN stays NaN.

    A cell is significant at false-discovery rate ``a`` where its q-value is at most ``a``.
    """
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p.ravel()))
    if not tested.size:
        return q
    values = p.ravel()[tested]
    order = np.argsort(values, kind="stable")
    ranked = values[order] * tested.size / np.arange(1, tested.size + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]  # monotone: q of rank i is the least from i on
    flat = q.reshape(-1)
    flat[tested[order]] = np.minimum(np.maximum(ranked, values[order]), 1.0)  # never below p (rounding)
    return q


def getis_ord_gi_star(values: FloatArray, valid: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Getis-Ord Gi* z-scores and two-sided p-values of ``values`` over ``valid`` cells.

    Binary weights over the 3x3 neighbourhood including the cell itself (queen contiguity), restricted
    to valid cells. NaN outside ``valid``; ``values`` there are never read. The sums run over the valid
    cells only, so a survey that covers a small part of a large grid costs little (see
    :func:`gi_star_at` for the same without grids).
    """
    z = np.full(values.shape, np.nan)
    p = np.full(values.shape, np.nan)
    rows, cols = np.nonzero(valid)
    z[rows, cols], p[rows, cols] = gi_star_at(rows, cols, np.asarray(values[rows, cols]), valid.shape)
    return z, p


def gi_star_at(
    rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], x: FloatArray, shape: tuple[int, ...]
) -> tuple[FloatArray, FloatArray]:
    """Getis-Ord Gi* z-scores and p-values of the values ``x`` at the cells ``(rows, cols)``.

    The cells (in row-major order, as :func:`numpy.nonzero` gives them) are the valid cells of
    :func:`getis_ord_gi_star`; NaN for all when fewer than 3 or all values are equal.
    """
    n = int(rows.size)
    z = np.full(n, np.nan)
    p = np.full(n, np.nan)
    if n < 3:
        return z, p
    x = np.asarray(x, dtype=np.float64)
    mean = float(x.mean())
    s = float(np.sqrt(max(float((x**2).mean()) - mean**2, 0.0)))
    if not s > 0:  # all values equal (rounding may make the variance a hair below zero)
        return z, p
    local_sum, w_sum = _queen_sums(rows, cols, x, shape)  # sum of weights = sum of w^2
    denom = s * np.sqrt(np.clip((n * w_sum - w_sum**2) / (n - 1), 1e-12, None))
    gi: FloatArray = (local_sum - mean * w_sum) / denom
    return gi, np.asarray(2 * stats.norm.sf(np.abs(gi)), dtype=np.float64)


PERMUTATIONS = 9999
"""Random neighbourhoods drawn per neighbour count for the Gi* pseudo p-values."""
PERMUTATION_SEED = 0
"""Seed of those draws (fixed: the same survey gives the same p-values)."""


def gi_star_permuted(values: FloatArray, valid: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Gi* z-scores, and two-sided pseudo p-values by conditional randomisation, over ``valid`` cells.

    Both are computed on ``log(1 + value)`` (values are rates, >= 0). A cell keeps its own value; the
    null draws its neighbours' values at random from all valid cells (:data:`PERMUTATIONS` draws for
    each neighbour count). The normal approximation of the Gi* p-value fails on skewed, unevenly
    observed litter rates (on synthetic surveys of pure noise it called a cell significant after the
    false-discovery correction in 5 to 10 of 100 surveys); these p-values do not assume a
    distribution. The logarithm, because on raw rates one dump dominates the draws: with two or
    three neighbours per cell (a survey along roads), a random neighbourhood holds the dump in about
    one draw in a hundred, so on the demo basin no p-value fell below 0.01 and nothing survived the
    correction, however clear the towns' clusters. (Ranks fixed that too, but lost the planted
    cluster of the synthetic test, where the rates' size matters.) NaN outside ``valid`` and for cells
    without a valid neighbour.
    """
    z = np.full(values.shape, np.nan)
    p = np.full(values.shape, np.nan)
    rows, cols = np.nonzero(valid)
    z[rows, cols], p[rows, cols] = gi_star_permuted_at(
        rows, cols, np.asarray(values[rows, cols]), valid.shape
    )
    return z, p


def gi_star_permuted_at(
    rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], x: FloatArray, shape: tuple[int, ...]
) -> tuple[FloatArray, FloatArray]:
    """:func:`gi_star_permuted` of the values ``x`` at the cells ``(rows, cols)`` (row-major), no grids."""
    x = np.log1p(np.asarray(x, dtype=np.float64))
    z, _ = gi_star_at(rows, cols, x, shape)
    pv = np.full(x.size, np.nan)
    if x.size < 3:
        return z, pv
    local_sum, w_sum = _queen_sums(rows, cols, x, shape)
    neighbours, count = local_sum - x, w_sum.astype(np.int64) - 1
    rng = np.random.default_rng(PERMUTATION_SEED)
    for k in np.unique(count[count > 0]).tolist():
        draws = np.sort(x[rng.integers(0, x.size, size=(PERMUTATIONS, k))].sum(axis=1))
        at = np.flatnonzero(count == k)
        tol = 1e-9 * max(float(np.abs(draws).max()), 1.0)
        above = PERMUTATIONS - np.searchsorted(draws, neighbours[at] - tol, side="left")
        below = np.searchsorted(draws, neighbours[at] + tol, side="right")
        pv[at] = np.minimum(1.0, (2 * np.minimum(above, below) + 1) / (PERMUTATIONS + 1))
    return z, pv


def _queen_sums(
    rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], x: FloatArray, shape: tuple[int, ...]
) -> tuple[FloatArray, FloatArray]:
    """Sum of ``x`` and number of cells over each cell's 3x3 neighbourhood among the given cells.

    ``rows, cols`` in row-major order (as :func:`numpy.nonzero` gives them). Neighbours are added in
    the order a 3x3 convolution adds them, so the sums equal ``ndimage.convolve``'s to the last bit.
    """
    height, width = int(shape[0]), int(shape[1])
    flat = rows.astype(np.int64) * width + cols
    local_sum = np.zeros(x.shape[0])
    w_sum = np.zeros(x.shape[0])
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            pos = np.minimum(np.searchsorted(flat, flat + (dr * width + dc)), flat.size - 1)
            hit = inside & (flat[pos] == flat + (dr * width + dc))
            local_sum += np.where(hit, x[pos], 0.0)
            w_sum += hit
    return local_sum, w_sum


DENSITY_BYTES_PER_CELL = 128
"""Peak memory of ``density`` per cell of the survey's grid (measured: about 110 bytes, 2.3 million cells)."""


def check_density_fits(grid: GridSpec, available: int | None) -> None:
    """Refuse, before any work, a survey grid whose smoothing would not fit in memory.

    Raises:
        ConfigError: cells x :data:`DENSITY_BYTES_PER_CELL` exceeds ``available`` (None: no check).
    """
    import math

    from plastic_hotspots.errors import ConfigError
    from plastic_hotspots.memory import format_bytes

    cells = grid.width * grid.height
    need = cells * DENSITY_BYTES_PER_CELL
    if available is None or need <= available:
        return
    fits = math.ceil(grid.cell_size * math.sqrt(need / available))
    raise ConfigError(
        f"--cell-size {grid.cell_size:g} cuts the survey's extent into {cells:,} cells ({grid.width:,} x "
        f"{grid.height:,}), which need about {format_bytes(need)} of memory; {format_bytes(available)} is "
        "available",
        hint=f"use --cell-size {max(fits, 1)} or more (street surveys are usually binned at 100 to 500 m)",
    )


def survey_grid(
    frame: gpd.GeoDataFrame, cell_size: float, grid: GridSpec | None = None
) -> tuple[GridSpec, IntArray, IntArray, npt.NDArray[np.bool_]]:
    """The grid of a survey (its points' extent, unless given) and each point's cell.

    Returns:
        ``(grid, rows, cols, inside)``: the cell of each point inside the grid (``inside`` picks them).
    """
    if grid is None:
        lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
        pad = 1e-6
        grid = grid_for_bounds(
            (lon.min() - pad, lat.min() - pad, lon.max() + pad, lat.max() + pad), cell_size
        )
    x, y = lonlat_to_grid(grid, frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    rows, cols, inside = rowcol(grid, x, y)
    return grid, rows[inside], cols[inside], inside


def survey_density(
    frame: gpd.GeoDataFrame,
    cell_size: float,
    params: HotspotParams | None = None,
    grid: GridSpec | None = None,
    min_observations: int | None = None,
) -> SurveyDensity:
    """Effort-normalised density of survey points (EPSG:4326) on a grid of ``cell_size`` metres.

    The kernel width and the shrinkage are chosen by cross-validation over the survey's tracks
    (:func:`~plastic_hotspots.maps.survey.smoothing.choose_smoothing`). Gi* is computed on each cell's
    own rate (items per observation) over the cells seen ``min_observations`` times or more (default
    ``params.min_observations``), and corrected for the number of cells tested
    (:func:`benjamini_hochberg`); its p-values come from conditional randomisation
    (:func:`gi_star_permuted`). Not on the smoothed rate: smoothing shares data between neighbours,
    which Gi*'s null of independent cells does not allow (on synthetic surveys of pure noise, Gi* of
    smoothed rates called some cell significant in about half of them).
    """
    params = params or HotspotParams()
    grid, r_in, c_in, inside = survey_grid(frame, cell_size, grid)
    obs = observations_on_grid(frame, grid).subset(inside)
    shape = (grid.height, grid.width)
    dens, choice = smoothed_density(r_in, c_in, obs, shape, min_observations=1, interval=params.interval)
    tested = dens.observations >= max(min_observations or params.min_observations, 1)
    gi_z, gi_p = gi_star_permuted(own_rate(dens), tested)
    return SurveyDensity(grid, dens, gi_z, gi_p, benjamini_hochberg(gi_p), choice)


def own_rate(density: DensityGrid) -> FloatArray:
    """Each cell's own rate (items per observation; NaN where nothing was observed), as a grid."""
    observations = density.observations
    return np.where(observations > 0, density.items / np.maximum(observations, 1), np.nan)


def cells_frame(density: DensityGrid, grid: GridSpec) -> gpd.GeoDataFrame:
    """One polygon per cell with any observation (grid CRS): effort, counts, rate and its interval."""
    rr, cc = np.divmod(density.observed_cells(), grid.width)
    west = grid.west + cc * grid.cell_size
    north = grid.north - rr * grid.cell_size
    geoms = shapely.box(west, north - grid.cell_size, west + grid.cell_size, north)
    data = {
        "row": rr,
        "col": cc,
        "observations": density.cell_observations,
        "effort_km": density.cell_effort_km,
        "items": density.cell_items,
        "rate": density.cell_rate,
        "rate_lo": density.cell_rate_lo,
        "rate_hi": density.cell_rate_hi,
        "surveyed": density.cell_surveyed,
    }
    for name, counts in density.cell_classes.items():
        data[f"n_{name}"] = counts
    return gpd.GeoDataFrame(data, geometry=geoms, crs=grid.crs)


def density_cells(result: SurveyDensity, min_observations: int) -> gpd.GeoDataFrame:
    """One polygon per surveyed cell (EPSG:4326) with effort, counts, rate, interval and Gi*."""
    cells = cells_frame(result.density, result.grid)
    rr, cc = cells["row"].to_numpy(), cells["col"].to_numpy()
    cells["gi_z"] = result.gi_z[rr, cc]
    cells["gi_p"] = result.gi_p[rr, cc]
    cells["gi_q"] = result.gi_q[rr, cc]
    cells["low_effort"] = cells["observations"].to_numpy() < min_observations
    return cells.drop(columns="surveyed").to_crs("EPSG:4326")


def track_lines(frame: gpd.GeoDataFrame, result: SurveyDensity) -> gpd.GeoDataFrame:
    """One line per survey track (EPSG:4326) with its observations, items and detection level.

    ``effect`` is the track's detection level relative to the mean track (1.0): a camera, light or
    speed that sees more or less litter than the others on the same streets.
    """
    ordered = frame.sort_values("video_ms", kind="stable") if "video_ms" in frame.columns else frame
    track = (
        ordered["track"].astype(str)
        if "track" in ordered.columns
        else pd.Series("survey", index=ordered.index)
    )
    rows = []
    for name, part in ordered.groupby(track, sort=True):
        coords = list(zip(part.geometry.x, part.geometry.y, strict=True))
        rows.append(
            {
                "track": str(name),
                "observations": len(part),
                "items": float(part["items"].sum()),
                "effect": float(result.density.track_effects.get(str(name), 1.0)),
                "geometry": LineString(coords if len(coords) > 1 else coords * 2),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
