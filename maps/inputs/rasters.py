"""Raster input layers (the DEM, any band) reprojected onto a basin's grid, with CRS checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


def require_file(path: Path, what: str) -> None:
    """Raise a :class:`LayerError` naming the config entry when a layer's file is missing."""
    if not Path(path).is_file():
        raise LayerError(f"{what} file not found: {path}", hint="check the path in the basin config")


ASSIGN_CRS_HINT = "assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`, or re-export it with its CRS"
"""How to fix a raster without a CRS (GDAL's command line)."""


def check_raster_crs(
    src: rasterio.io.DatasetReader, path: Path, what: str, hint: str = ASSIGN_CRS_HINT
) -> None:
    """Raise a :class:`CRSError` when an input raster carries no CRS (both run modes read rasters so).

    Raises:
        CRSError: ``src`` has no CRS.
    """
    if src.crs is None:
        raise CRSError(f"the {what} raster {path} has no CRS", hint=hint)


def raster_bounds_lonlat(path: Path) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a raster in EPSG:4326."""
    require_file(path, "raster")
    with rasterio.open(path) as src:
        if src.crs is None:
            raise CRSError(f"{path} has no CRS", hint="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
        from rasterio.warp import transform_bounds

        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return (float(west), float(south), float(east), float(north))


def load_raster(path: Path, grid: GridSpec, *, what: str, resampling: Resampling) -> FloatArray:
    """Reproject band 1 of a raster onto the grid; nodata becomes NaN."""
    require_file(path, what)
    with rasterio.open(path) as src:
        check_raster_crs(src, path, what)
        data = read_band_nan(src)
        if not np.isfinite(data).any():
            raise LayerError(
                f"the {what} raster {path} holds nodata everywhere", hint="check its nodata value"
            )
        out = np.full(grid.shape, np.nan, dtype=np.float64)
        reproject(
            source=data,
            destination=out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=Affine(*grid.transform),
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    if not np.isfinite(out).any():
        raise LayerError(
            f"the {what} raster {path} does not overlap the basin grid",
            hint="check the area of interest and the raster's extent and CRS",
        )
    return out


def load_dem(path: Path, grid: GridSpec) -> FloatArray:
    """Load a DEM (metres) onto the grid by bilinear resampling."""
    dem = load_raster(path, grid, what="DEM", resampling=Resampling.bilinear)
    finite = dem[np.isfinite(dem)]
    if finite.size and (float(finite.max()) > 9000.0 or float(finite.min()) < -500.0):
        raise LayerError(
            f"the DEM {path} has elevations from {finite.min():.0f} to {finite.max():.0f}; expected metres",
            hint="convert it to metres above sea level",
        )
    return dem
