"""Reading raster bands as floats with NaN for nodata, without GDAL's derived masks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, overload

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


@overload
def read_band_nan(
    src: rasterio.io.DatasetReader, window: Window | None = None, *, widen: Literal[True] = True
) -> FloatArray: ...


@overload
def read_band_nan(
    src: rasterio.io.DatasetReader, window: Window | None = None, *, widen: bool
) -> npt.NDArray[np.floating]: ...


def read_band_nan(
    src: rasterio.io.DatasetReader, window: Window | None = None, *, widen: bool = True
) -> npt.NDArray[np.floating]:
    """Band 1 (or a window of it) as floats, NaN where the band holds no data.

    Where the band's only mask is its nodata value (or it has none), the values are read once and
    compared with that value; other masks (a mask band, an alpha band) are read as GDAL gives them.
    Reading the mask GDAL derives from a nodata value decodes the band twice and takes about five
    times as long. Integer bands become float64; float bands too unless ``widen`` is False, when they
    keep their precision.
    """
    flags = set(src.mask_flag_enums[0])
    out: npt.NDArray[np.floating]
    if not flags <= {MaskFlags.all_valid, MaskFlags.nodata}:
        band = src.read(1, window=window, masked=True)
        kind = band.dtype if np.issubdtype(band.dtype, np.floating) and not widen else np.float64
        out = band.astype(kind).filled(np.nan)
        return out
    data = src.read(1, window=window)
    out = data if np.issubdtype(data.dtype, np.floating) and not widen else data.astype(np.float64)
    if MaskFlags.nodata in flags and src.nodata is not None and not np.isnan(src.nodata):
        out[data == src.nodata] = np.nan
    return out


def read_band(path: Path) -> tuple[npt.NDArray[np.float64], GridSpec]:
    """Read band 1 of a north-up raster written on a projected grid, nodata as NaN."""
    with rasterio.open(path) as src:
        values = read_band_nan(src)
        t = src.transform
        grid = GridSpec(
            crs=src.crs.to_string(), west=t.c, north=t.f, cell_size=t.a, width=src.width, height=src.height
        )
    return values, grid
