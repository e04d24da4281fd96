"""Observed litter density from surveys: cells with effort, shrunk rates, intervals and hot spots.

``plastic-hotspots density OBSERVATIONS --cell-size M --out cells.gpkg`` reads the detector's per-image
table (``detect``'s ``.images.parquet``) or pLitter track GeoJSON, bins the observations into square cells
of a UTM grid, and writes one polygon per surveyed cell (EPSG:4326) with its effort, items, per-class
counts, the effort-normalised rate (gamma-Poisson shrinkage towards the area's mean), its interval, and
the Getis-Ord Gi* statistic of the rate. Cells with little effort are flagged ``low_effort``, never
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

from plastic_hotspots.maps.grid import grid_for_bounds, rowcol
from plastic_hotspots.maps.inputs.observations import observations_on_grid
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.survey.density import DensityGrid, observed_density
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SurveyDensity:
    """Density of a survey on a grid, with the grid and the observations' cells."""

    grid: GridSpec
    density: DensityGrid
    gi_z: FloatArray
    gi_p: FloatArray


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
    s = float(np.sqrt((x**2).mean() - mean**2))
    if s == 0:
        return z, p
    local_sum, w_sum = _queen_sums(rows, cols, x, shape)  # sum of weights = sum of w^2
    denom = s * np.sqrt(np.clip((n * w_sum - w_sum**2) / (n - 1), 1e-12, None))
    gi: FloatArray = (local_sum - mean * w_sum) / denom
    return gi, np.asarray(2 * stats.norm.sf(np.abs(gi)), dtype=np.float64)


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


def survey_density(
    frame: gpd.GeoDataFrame,
    cell_size: float,
    params: HotspotParams | None = None,
    grid: GridSpec | None = None,
) -> SurveyDensity:
    """Effort-normalised density of survey points (EPSG:4326) on a grid of ``cell_size`` metres.

    The prior strength of the shrinkage is estimated from the spread between cells
    (:func:`~plastic_hotspots.maps.survey.density.estimate_prior_strength`), never below
    ``params.prior_strength_obs``.
    """
    params = params or HotspotParams()
    if grid is None:
        lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
        pad = 1e-6
        grid = grid_for_bounds(
            (lon.min() - pad, lat.min() - pad, lon.max() + pad, lat.max() + pad), cell_size
        )
    obs = observations_on_grid(frame, grid)
    rows, cols, inside = rowcol(grid, obs.x, obs.y)
    obs = obs.subset(inside)
    shape = (grid.height, grid.width)
    r_in, c_in = rows[inside], cols[inside]
    dens = observed_density(
        r_in,
        c_in,
        obs,
        shape,
        min_observations=1,
        prior_strength=None,
        prior_floor=params.prior_strength_obs,
        interval=params.interval,
    )
    gi_z, gi_p = getis_ord_gi_star(dens.rate, dens.surveyed)  # the rate is finite where surveyed
    return SurveyDensity(grid, dens, gi_z, gi_p)


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
