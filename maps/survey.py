"""Observed litter density from surveys: cells with effort, shrunk rates, intervals and hot spots.

``plastic-hotspots density OBSERVATIONS --cell-size M --out cells.gpkg`` reads the detector's per-image
table (``detect``'s ``.images.parquet``) or pLitter track GeoJSON, bins the observations into square cells
of a UTM grid, and writes one polygon per surveyed cell (EPSG:4326) with its effort, items, per-class
counts, the effort-normalised rate (gamma-Poisson shrinkage towards the area's mean), its interval, and
the Getis-Ord Gi* statistic of the rate. Cells with little effort are flagged ``low_effort``, never
called clean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage, stats
from shapely.geometry import box as shapely_box

from maps.density import DensityGrid, bin_to_cells, estimate_prior_strength, observed_density, track_effort_km
from maps.errors import LayerError
from maps.grid import grid_for_bounds, lonlat_to_grid, rowcol
from maps.params import HotspotParams
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


def read_plitter_tracks(path: Path) -> gpd.GeoDataFrame:
    """PLitter track GeoJSON as one point per detection row.

    Each feature's ``properties.track`` rows are ``[lon, lat, video_time_ms, count, c1, c2, c3, c4]``;
    an item is one of c1, c2, c3 (c4 are bins, kept as a column but not counted as litter). All four
    classes stay as ``n_c1`` .. ``n_c4``.
    """
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = []
    for k, feature in enumerate(doc.get("features", [])):
        props = feature.get("properties") or {}
        track = str(props.get("video") or props.get("name") or f"track-{k}")
        for row in props.get("track") or []:
            if len(row) < 8:
                raise LayerError(
                    f"{path}: a track row has {len(row)} values, expected 8", hint="check the file"
                )
            lon, lat, ms, _count, c1, c2, c3, c4 = (float(v) for v in row[:8])
            rows.append((track, lon, lat, ms, c1 + c2 + c3, c1, c2, c3, c4))
    if not rows:
        raise LayerError(
            f"{path} holds no pLitter track rows", hint="expect features with a `track` property"
        )
    frame = pd.DataFrame(
        rows, columns=["track", "lon", "lat", "video_ms", "items", "n_c1", "n_c2", "n_c3", "n_c4"]
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


def read_observations(path: Path) -> gpd.GeoDataFrame:
    """Survey points from a detector GeoParquet (usable rows only) or a pLitter track GeoJSON."""
    path = Path(path)
    if not path.is_file():
        raise LayerError(
            f"observations {path} do not exist", hint="pass detect's .images.parquet or a track file"
        )
    if path.suffix.lower() in {".geojson", ".json"}:
        head = path.read_text(encoding="utf-8")[:4096]
        if '"track"' in head:
            return read_plitter_tracks(path)
        frame = gpd.read_file(path)
    else:
        frame = gpd.read_parquet(path)
    if frame.crs is None:
        raise LayerError(f"the observations {path} have no CRS", hint="write them as EPSG:4326")
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if "items" not in frame.columns:
        raise LayerError(
            f"the observations {path} have no `items` column", hint="one row per image with its count"
        )
    return frame.to_crs("EPSG:4326")


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
    to valid cells. NaN outside ``valid``.
    """
    n = int(valid.sum())
    z = np.full(values.shape, np.nan)
    p = np.full(values.shape, np.nan)
    if n < 3:
        return z, p
    x = np.where(valid, values, 0.0)
    mean = float(x[valid].mean())
    s = float(np.sqrt((x[valid] ** 2).mean() - mean**2))
    if s == 0:
        return z, p
    kernel = np.ones((3, 3))
    local_sum = ndimage.convolve(x, kernel, mode="constant")
    w_sum = ndimage.convolve(valid.astype(np.float64), kernel, mode="constant")  # sum of weights = sum of w^2
    denom = s * np.sqrt(np.clip((n * w_sum - w_sum**2) / (n - 1), 1e-12, None))
    gi = (local_sum - mean * w_sum) / denom
    z[valid] = gi[valid]
    p[valid] = 2 * stats.norm.sf(np.abs(gi[valid]))
    return z, p


def survey_density(frame: gpd.GeoDataFrame, cell_size: float, params: HotspotParams | None = None,
                   grid: GridSpec | None = None) -> SurveyDensity:  # fmt: skip
    """Effort-normalised density of the survey points on a grid of ``cell_size`` metres."""
    params = params or HotspotParams()
    lon, lat = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    if grid is None:
        pad = 1e-6
        grid = grid_for_bounds(
            (lon.min() - pad, lat.min() - pad, lon.max() + pad, lat.max() + pad), cell_size
        )
    x, y = lonlat_to_grid(grid, lon, lat)
    rows, cols, inside = rowcol(grid, x, y)
    track = (
        frame["track"].astype(str).to_numpy() if "track" in frame.columns else np.full(len(frame), "survey")
    )
    order = (
        frame["video_ms"].to_numpy(dtype=np.float64)
        if "video_ms" in frame.columns
        else np.arange(len(frame), dtype=np.float64)
    )
    effort = track_effort_km(x, y, track.astype(np.str_), order)
    from maps.density import Observations

    classes = {c[2:]: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c.startswith("n_")}
    obs = Observations(x=x, y=y, items=frame["items"].to_numpy(dtype=np.float64), track=track.astype(np.str_),
                       effort_km=effort, classes=classes).subset(inside)  # fmt: skip
    shape = (grid.height, grid.width)
    r_in, c_in = rows[inside], cols[inside]
    counts = bin_to_cells(r_in, c_in, np.ones(len(obs)), shape)
    items = bin_to_cells(r_in, c_in, obs.items, shape)
    strength = estimate_prior_strength(items.ravel(), counts.ravel(), floor=params.prior_strength_obs)
    dens = observed_density(
        r_in, c_in, obs, shape, min_observations=1, prior_strength=strength, interval=params.interval,
    )  # fmt: skip
    gi_z, gi_p = getis_ord_gi_star(np.nan_to_num(dens.rate), dens.surveyed)
    return SurveyDensity(grid, dens, gi_z, gi_p)


def cells_frame(density: DensityGrid, grid: GridSpec) -> gpd.GeoDataFrame:
    """One polygon per cell with any observation (grid CRS): effort, counts, rate and its interval."""
    rr, cc = np.nonzero(density.observations > 0)
    west = grid.west + cc * grid.cell_size
    north = grid.north - rr * grid.cell_size
    geoms = [
        shapely_box(w, n - grid.cell_size, w + grid.cell_size, n) for w, n in zip(west, north, strict=True)
    ]
    data = {
        "row": rr,
        "col": cc,
        "observations": density.observations[rr, cc],
        "effort_km": density.effort_km[rr, cc],
        "items": density.items[rr, cc],
        "rate": density.rate[rr, cc],
        "rate_lo": density.rate_lo[rr, cc],
        "rate_hi": density.rate_hi[rr, cc],
        "surveyed": density.surveyed[rr, cc],
    }
    for name, counts in density.classes.items():
        data[f"n_{name}"] = counts[rr, cc]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=grid.crs)


def density_cells(result: SurveyDensity, min_observations: int) -> gpd.GeoDataFrame:
    """One polygon per surveyed cell (EPSG:4326) with effort, counts, rate, interval and Gi*."""
    cells = cells_frame(result.density, result.grid)
    rr, cc = cells["row"].to_numpy(), cells["col"].to_numpy()
    cells["gi_z"] = result.gi_z[rr, cc]
    cells["gi_p"] = result.gi_p[rr, cc]
    cells["low_effort"] = cells["observations"].to_numpy() < min_observations
    return cells.drop(columns="surveyed").to_crs("EPSG:4326")


def poisson_deviance(observed: FloatArray, expected: FloatArray) -> float:
    """Poisson deviance ``2 sum(y log(y / mu) - (y - mu))`` (mu floored at 1e-9)."""
    mu = np.maximum(expected, 1e-9)
    y = observed
    term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(2 * np.sum(term - (y - mu)))
