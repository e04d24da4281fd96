"""The large mode's GeoPackage, built tile by tile: basin, rivers, barriers and ranked hotspots.

The layers are those of the whole-grid run (:func:`plastic_hotspots.maps.wholegrid.run.run_hotspots`) with the
same
columns. Two differ in how their rows are cut, not in what they cover:

* ``basin``: the basin's cells polygonised tile by tile and dissolved (the same area; vertices may
  differ along tile edges);
* ``rivers``: one row per stream order *per tile* (the whole-grid run has one row per order), each
  tile's segments from a river cell's centre to its downstream cell's centre, appended tile by tile so
  that the network is never held in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
import rasterio.shutil
import shapely
from pyproj import Transformer
from rasterio import features
from rasterio.transform import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.maps.io.writers import (
    COG_OPTIONS,
    band_profile,
    tag_band,
    write_layer,
    write_provenance_layer,
)
from plastic_hotspots.maps.large.inputs import tile_grid
from plastic_hotspots.maps.large.store import TiledRaster, TileLayout
from plastic_hotspots.maps.science.vectors import river_chains, river_lines_frame
from plastic_hotspots.records import GridSpec, Provenance

__all__ = [
    "basin_polygon",
    "river_lines",
    "write_large_gpkg",
    "write_tiled_raster",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def basin_polygon(basin: TiledRaster, grid: GridSpec) -> object:
    """The cells of ``basin`` (non-zero) as one (multi)polygon in the grid CRS, tile by tile."""
    lay = basin.layout
    parts: list[object] = []
    for ti, tj in lay.tiles():
        mask = basin.read(ti, tj).astype(np.bool_)
        if not mask.any():
            continue
        sub = tile_grid(grid, lay, ti, tj)
        shapes = features.shapes(
            mask.astype(np.int32), mask=mask, transform=Affine(*sub.transform), connectivity=4
        )
        parts.append(unary_union([shape(geom) for geom, _ in shapes]))
    return unary_union(parts) if parts else None


def river_lines(
    rivers: TiledRaster, down: TiledRaster, order: TiledRaster, grid: GridSpec
) -> Iterator[gpd.GeoDataFrame]:
    """The river network as lines (EPSG:4326), one frame per tile with river cells (rows: its orders)."""
    lay = rivers.layout
    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    for ti, tj in lay.tiles():
        river = rivers.read(ti, tj).astype(np.bool_).ravel()
        if not river.any():
            continue
        r0, _, c0, c1 = lay.window(ti, tj)
        local = np.flatnonzero(river)
        dst = down.read(ti, tj).ravel()[local]
        keep = dst >= 0
        local, dst = local[keep], dst[keep]
        if not local.size:
            continue
        lr, lc = np.divmod(local, c1 - c0)
        seg = (lr + r0) * grid.width + lc + c0  # sorted, as ``local`` is
        orders = order.read(ti, tj).ravel()[local]
        xs, ys, point_line, line_order = river_chains(seg, dst, orders, grid)  # chains end at the tile edge
        lon, lat = to_lonlat.transform(xs, ys)  # here, not by to_crs: one transformer for all tiles
        yield river_lines_frame(shapely.linestrings(lon, lat, indices=point_line), line_order, "EPSG:4326")


def write_large_gpkg(
    path: Path,
    layers: dict[str, gpd.GeoDataFrame],
    rivers: Iterator[gpd.GeoDataFrame],
    provenance: Provenance,
) -> Path:
    """Write ``hotspots.gpkg`` atomically: ``layers``, the ``rivers`` appended frame by frame, provenance."""
    with atomic_path(path) as tmp:
        for name, frame in layers.items():
            write_layer(tmp, name, frame)
        written = False
        for frame in rivers:
            write_layer(tmp, "rivers", frame, append=written)
            written = True
        if not written:
            empty = gpd.GeoDataFrame({"order": pd.Series([], dtype="int64")}, geometry=[], crs="EPSG:4326")
            write_layer(tmp, "rivers", empty)
        write_provenance_layer(tmp, provenance)
    return path


def _block(tile: int) -> int:
    """GeoTIFF block edge: the largest of 512 ... 16 dividing the tile (each write fills whole blocks)."""
    return next((b for b in (512, 256, 128, 64, 32, 16) if tile % b == 0), 256)


def write_tiled_raster(
    path: Path,
    grid: GridSpec,
    layout: TileLayout,
    values: Callable[[int, int], FloatArray],
    provenance: Provenance,
    *,
    description: str,
    unit: str,
    cog: bool,
) -> Path:
    """Write one float32 band tile by tile (windowed writes), then as a COG if ``cog``; atomically."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        **band_profile(grid),
        "compress": "DEFLATE",
        "predictor": 3,
        "tiled": True,
        "blockxsize": _block(layout.tile),
        "blockysize": _block(layout.tile),
        "BIGTIFF": "IF_SAFER",
    }
    if cog:  # the COG copy compresses: the staging file need not
        profile = {k: v for k, v in profile.items() if k not in ("compress", "predictor")}
    with atomic_path(path) as tmp:
        staging = tmp.with_name(tmp.stem + "-tiles.tif") if cog else tmp
        try:
            with rasterio.open(staging, "w", **profile) as dst:
                for ti, tj in layout.tiles():
                    r0, r1, c0, c1 = layout.window(ti, tj)
                    window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
                    dst.write(values(ti, tj).astype(np.float32), 1, window=window)
                tag_band(dst, description, unit, provenance)
            if cog:
                rasterio.shutil.copy(
                    staging,
                    tmp,
                    driver="COG",
                    BIGTIFF="IF_SAFER",
                    **COG_OPTIONS,
                )
        finally:
            if cog and staging.exists():
                staging.unlink()
    return path
