"""Writing the hotspot model's outputs: Cloud-Optimised GeoTIFFs and GeoPackages, atomically.

Every file is written through :func:`plastic_hotspots.geoio.atomic_path`, so a crash never leaves a
half-written output. Each carries the provenance of the run (GeoTIFF tag
``PROVENANCE``; a ``provenance`` table in the GeoPackage).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
from rasterio.transform import Affine

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.records import GridSpec, Provenance

COG_OPTIONS: dict[str, str | int] = {
    "compress": "DEFLATE",
    "level": 1,  # twice as fast as the default 6, files 2 % larger
    "predictor": 3,
    "blocksize": 256,
    "overview_resampling": "average",
}
"""Creation options of every Cloud-Optimised GeoTIFF the model writes (whole grid or tile by tile)."""


def write_cog(
    path: Path,
    values: npt.NDArray[np.float64],
    grid: GridSpec,
    provenance: Provenance,
    *,
    description: str,
    unit: str,
    nodata: float = float("nan"),
    mask: npt.NDArray[np.bool_] | None = None,
) -> Path:
    """Write one band as a Cloud-Optimised GeoTIFF (float32, deflate level 1, internal overviews)."""
    with atomic_path(path) as tmp:
        profile = {
            "driver": "COG",
            "width": grid.width,
            "height": grid.height,
            "count": 1,
            "dtype": "float32",
            "crs": grid.crs,
            "transform": Affine(*grid.transform),
            "nodata": nodata,
            **COG_OPTIONS,
        }
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(tmp, "w", **profile) as dst:
            band = values.astype(np.float32)
            if mask is not None:
                band[~mask] = nodata  # outside the mask
            dst.write(band, 1)
            del band
            dst.set_band_description(1, description)
            dst.update_tags(1, unit=unit)
            dst.update_tags(PROVENANCE=provenance.to_json())
    return path


def write_gpkg(path: Path, layers: Mapping[str, gpd.GeoDataFrame], provenance: Provenance) -> Path:
    """Write several layers into one GeoPackage (EPSG:4326), plus a ``provenance`` table."""
    with atomic_path(path) as tmp:
        for name, frame in layers.items():
            out = frame.to_crs("EPSG:4326") if frame.crs is not None else frame.set_crs("EPSG:4326")
            out.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        meta = pd.DataFrame({"key": ["provenance"], "value": [provenance.to_json()]})
        gpd.GeoDataFrame(meta, geometry=gpd.GeoSeries([None] * len(meta)), crs="EPSG:4326").to_file(
            tmp, layer="provenance", driver="GPKG", engine="pyogrio"
        )
    return path
