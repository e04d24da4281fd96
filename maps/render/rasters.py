"""Rasters for the map page: reading them decimated, hillshading, colouring, and warping to Web Mercator."""

from __future__ import annotations

import base64
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from matplotlib import colormaps
from matplotlib import image as mpimage
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.warp import calculate_default_transform, reproject, transform_bounds

from plastic_hotspots.maps.errors import RenderError
from plastic_hotspots.maps.io.results import HOTSPOTS_COMMAND

FloatArray = npt.NDArray[np.float64]
Bounds = list[list[float]]  # [[south, west], [north, east]], as Leaflet wants them


MAX_IMAGE_PIXELS = 1600
"""Longest side, in pixels, of the rasters embedded in the page (larger ones are read decimated)."""

LAND_LOW = np.array([0.90, 0.93, 0.85])  # pale green-grey for the lowest ground
LAND_HIGH = np.array([0.95, 0.91, 0.83])  # pale tan for the highest
LEAKAGE_CMAP = "YlOrRd"


@dataclass(frozen=True, slots=True)
class Raster:
    """Band 1 of a raster, decimated to at most :data:`MAX_IMAGE_PIXELS` on its longest side."""

    values: FloatArray
    transform: Affine
    crs: Any


def read_raster(path: Path, resampling: Resampling) -> Raster:
    """Band 1 of a raster, NaN for nodata, decimated to :data:`MAX_IMAGE_PIXELS` with ``resampling``."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise RenderError(
                    f"{path} has no CRS, so it cannot be placed on the map",
                    hint=f"write the result directory again with `{HOTSPOTS_COMMAND}`",
                )
            scale = max(src.width, src.height) / MAX_IMAGE_PIXELS
            if scale > 1:
                height = max(1, round(src.height / scale))
                width = max(1, round(src.width / scale))
                band = src.read(1, out_shape=(height, width), resampling=resampling, masked=True)
                transform = src.transform @ Affine.scale(src.width / width, src.height / height)
            else:
                band = src.read(1, masked=True)
                transform = src.transform
            values = np.asarray(band.astype(np.float64).filled(np.nan), dtype=np.float64)
            return Raster(values=values, transform=transform, crs=src.crs)
    except RasterioError as exc:
        raise RenderError(
            f"cannot read {path}: {exc}", hint=f"write the result directory again with `{HOTSPOTS_COMMAND}`"
        ) from exc


def hillshade(
    dem: FloatArray,
    cell_x: float,
    cell_y: float,
    *,
    azimuth_deg: float = 315.0,
    altitude_deg: float = 45.0,
) -> FloatArray:
    """Shade a north-up DEM lit from ``azimuth_deg`` (clockwise from north) at ``altitude_deg``.

    The slope comes from central differences (``numpy.gradient``); the shade is the cosine of the
    angle between the surface normal and the direction of the light, clipped at 0.

    Args:
        dem: Elevations in metres, row 0 to the north; NaN where unknown.
        cell_x: Cell width in metres.
        cell_y: Cell height in metres (positive).
        azimuth_deg: Direction the light comes from, degrees clockwise from north.
        altitude_deg: Height of the light above the horizon, degrees.

    Returns:
        Shade in ``[0, 1]`` (1: facing the light, flat ground: ``sin(altitude)``); NaN where the DEM is.
    """
    z = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(z)
    altitude = math.radians(altitude_deg)
    if z.ndim != 2 or min(z.shape) < 2 or not valid.any():
        return np.where(valid, math.sin(altitude), np.nan)
    filled = np.where(valid, z, float(np.nanmean(z)))
    d_row, d_col = np.gradient(filled, cell_y, cell_x)
    dz_east = d_col
    dz_north = -d_row  # rows run north to south
    azimuth = math.radians(azimuth_deg)
    light_east = math.sin(azimuth) * math.cos(altitude)
    light_north = math.cos(azimuth) * math.cos(altitude)
    light_up = math.sin(altitude)
    shade = (-dz_east * light_east - dz_north * light_north + light_up) / np.sqrt(
        1.0 + dz_east**2 + dz_north**2
    )
    return np.where(valid, np.clip(shade, 0.0, 1.0), np.nan)


def cell_size_m(raster: Raster) -> tuple[float, float]:
    """Cell width and height in metres (at the middle latitude for geographic rasters)."""
    cell_x, cell_y = abs(raster.transform.a), abs(raster.transform.e)
    if raster.crs.is_geographic:  # degrees: metres at the raster's middle latitude
        rows = raster.values.shape[0]
        lat = raster.transform.f + raster.transform.e * rows / 2
        return cell_x * 111_320.0 * math.cos(math.radians(lat)), cell_y * 110_574.0
    return cell_x, cell_y


def to_web_mercator(raster: Raster, bands: FloatArray, resampling: Resampling) -> tuple[FloatArray, Bounds]:
    """Warp ``bands`` (bands, rows, cols on ``raster``'s grid) to EPSG:3857, Leaflet's projection.

    An image overlay is stretched linearly between its corners in the map's projection, so warping
    to Web Mercator (rather than to plain longitude/latitude) makes every pixel land where it belongs.
    The corners are returned in EPSG:4326, as Leaflet wants them.
    """
    n_bands, rows, cols = bands.shape
    left, top = raster.transform.c, raster.transform.f
    right = left + raster.transform.a * cols
    bottom = top + raster.transform.e * rows
    with warnings.catch_warnings():  # rasterio itself still multiplies Affines with `*`
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        dst_transform, width, height = calculate_default_transform(
            raster.crs, "EPSG:3857", cols, rows, left=left, bottom=bottom, right=right, top=top
        )
    out = np.full((n_bands, int(height), int(width)), np.nan, dtype=np.float64)
    reproject(
        source=bands,
        destination=out,
        src_transform=raster.transform,
        src_crs=raster.crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs="EPSG:3857",
        dst_nodata=np.nan,
        resampling=resampling,
    )
    x0, y0 = dst_transform.c, dst_transform.f
    x1, y1 = x0 + dst_transform.a * int(width), y0 + dst_transform.e * int(height)
    west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", x0, y1, x1, y0)
    return out, [[float(south), float(west)], [float(north), float(east)]]


def png_data_uri(rgba: npt.NDArray[np.uint8]) -> str:
    """An RGBA image as a ``data:image/png`` URI."""
    buffer = io.BytesIO()
    mpimage.imsave(buffer, rgba, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def basemap_rgba(dem: FloatArray, shade: FloatArray) -> npt.NDArray[np.uint8]:
    """Colour a hillshade: a pale land colour (greener low, tanner high) darkened by the shade.

    Args:
        dem: Elevations; NaN where unknown (transparent in the image).
        shade: Hillshade in ``[0, 1]`` on the same grid.

    Returns:
        An RGBA image, ``uint8``, of the grid's shape.
    """
    valid = np.isfinite(dem) & np.isfinite(shade)
    rgba = np.zeros((*dem.shape, 4), dtype=np.uint8)
    if not valid.any():
        return rgba
    lo, hi = float(np.min(dem[valid])), float(np.max(dem[valid]))
    t = np.clip((np.where(valid, dem, lo) - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(dem.shape)
    land = LAND_LOW[None, None, :] * (1.0 - t[..., None]) + LAND_HIGH[None, None, :] * t[..., None]
    light = 0.45 + 0.55 * np.where(valid, shade, 1.0)
    rgba[..., :3] = np.clip(land * light[..., None] * 255.0, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(valid, 255, 0).astype(np.uint8)
    return rgba


def leakage_rgba(values: FloatArray) -> tuple[npt.NDArray[np.uint8], float, float]:
    """Colour the leakage index on a log scale, transparent where it is zero or unknown.

    Args:
        values: kg/yr per cell; 0 or NaN where nothing leaks.

    Returns:
        The RGBA image and the values at the low and high ends of the colour ramp (``0, 0`` when
        nothing is above zero).
    """
    positive = np.isfinite(values) & (values > 0)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    if not positive.any():
        return rgba, 0.0, 0.0
    pos = values[positive]
    hi = float(pos.max())
    lo = max(float(np.percentile(pos, 2)), hi * 1e-4)
    if lo >= hi:
        lo = hi / 10.0
    t = (np.log10(np.clip(np.where(positive, values, lo), lo, hi)) - math.log10(lo)) / (
        math.log10(hi) - math.log10(lo)
    )
    colours = colormaps[LEAKAGE_CMAP](np.clip(t, 0.0, 1.0))
    rgba[..., :3] = np.clip(colours[..., :3] * 255.0, 0, 255).astype(np.uint8)
    # Faint where little leaks, so the basemap shows through; nearly opaque at the hotspots.
    rgba[..., 3] = np.where(positive, 70 + 150 * np.clip(t, 0.0, 1.0), 0).astype(np.uint8)
    return rgba, lo, hi
