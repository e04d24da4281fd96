"""Input layers onto a grid larger than memory, tile by tile: the DEM, population, service zones.

Each function writes a :class:`~plastic_hotspots.maps.large.store.TiledRaster` and holds one tile of the grid
(and
the part of the source raster under it) at a time. The results are those of
:mod:`plastic_hotspots.maps.inputs.rasters` on
the whole grid:

* DEM: bilinear, through a GDAL warped VRT read one tile window at a time (equal to
  :func:`plastic_hotspots.maps.inputs.rasters.load_dem` on the DEMs tried: the demo basin's and the Mekong
  tributary's).
* Population: sum-preserving, as :func:`plastic_hotspots.maps.inputs.population.splat_counts`: for each tile,
the source pixels
  under it (with a one-pixel margin) are split into the same ``k x k`` sub-pixels, ``k`` chosen from
  the whole raster, and only the sub-pixels landing in the tile are kept. Each sub-pixel lands in
  exactly one tile, so the total is kept, and every cell receives the same additions in the same
  order as on the whole grid: the result is :func:`plastic_hotspots.maps.inputs.population.load_population`'s,
  bit for bit.
* Service zones: :func:`plastic_hotspots.maps.inputs.vectors.rasterize_zones` on each tile's window.

The checks of :mod:`plastic_hotspots.maps.inputs.rasters` (missing CRS, nodata everywhere, no overlap, wrong
units) raise the
same :class:`~plastic_hotspots.maps.errors.LayerError` errors; the whole-raster ones read the source in
strips.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, transform_bounds
from rasterio.windows import Window

from plastic_hotspots.maps.config import DemSource, PopulationPolygons, PopulationSource
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.inputs.divisions import DivisionPeople, read_divisions, spread_population
from plastic_hotspots.maps.inputs.population import POPULATION_CRS_HINT, check_population_range
from plastic_hotspots.maps.inputs.rasters import (
    check_dem_range,
    check_raster_crs,
    dem_tiles,
    fill_gaps,
    open_mosaic,
    reading_layer,
    require_file,
)
from plastic_hotspots.maps.inputs.vectors import ZoneRasters, rasterize_zones
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.maps.large.store import TiledRaster, TileLayout
from plastic_hotspots.maps.params import ZoneDefaults
from plastic_hotspots.records import GridSpec

__all__ = [
    "read_dem_tiled",
    "regrid_population_tiled",
    "tile_grid",
    "zones_for_tile",
]

FloatArray = npt.NDArray[np.float64]


def tile_grid(grid: GridSpec, layout: TileLayout, ti: int, tj: int) -> GridSpec:
    """The grid of one tile's window of ``grid``."""
    r0, r1, c0, c1 = layout.window(ti, tj)
    return GridSpec(
        crs=grid.crs,
        west=grid.west + c0 * grid.cell_size,
        north=grid.north - r0 * grid.cell_size,
        cell_size=grid.cell_size,
        width=c1 - c0,
        height=r1 - r0,
    )


def _strips(src: rasterio.io.DatasetReader, max_cells: int) -> Iterator[FloatArray]:
    """Band 1 in strips of whole rows, at most ``max_cells`` cells each (nodata as NaN)."""
    rows = max(1, max_cells // max(src.width, 1))
    for row in range(0, src.height, rows):
        window = Window(0, row, src.width, min(rows, src.height - row))
        yield read_band_nan(src, window)


def read_dem_tiled(dem: DemSource | Sequence[Path], grid: GridSpec, out_path: Path, tile: int) -> TiledRaster:
    """Load a DEM (metres) onto ``grid`` by bilinear resampling, tile by tile.

    As :func:`plastic_hotspots.maps.inputs.rasters.load_dem` (the same values, the same checks). A DEM
    given as tiles is opened as :func:`plastic_hotspots.maps.inputs.rasters.open_mosaic` groups them,
    one warped VRT per group; a cell takes the first group with data there.

    Args:
        dem: The DEM raster (any CRS), or its tiles (any CRSs).
        grid: The grid.
        out_path: File of the tiled result.
        tile: Tile edge in cells.

    Returns:
        The DEM on the grid, float64, NaN for nodata.

    Raises:
        LayerError: A file is missing, has no CRS, holds nodata everywhere, does not overlap the
            grid, or is not in metres.
    """
    tiles = dem_tiles(dem)
    layout = TileLayout(grid.height, grid.width, tile)
    out = TiledRaster.create(out_path, layout, np.float64)
    lo, hi = math.inf, -math.inf
    with open_mosaic(tiles) as groups, ExitStack() as stack:
        vrts = [
            stack.enter_context(
                WarpedVRT(
                    src,
                    crs=grid.crs,
                    transform=Affine(*grid.transform),
                    width=grid.width,
                    height=grid.height,
                    resampling=Resampling.bilinear,
                    nodata=np.nan,
                    dtype="float64",
                )
            )
            for src, _ in groups
        ]
        for ti, tj in layout.tiles():
            r0, r1, c0, c1 = layout.window(ti, tj)
            window = Window(c0, r0, c1 - c0, r1 - r0)
            values = vrts[0].read(1, window=window, masked=True).astype(np.float64).filled(np.nan)
            for vrt in vrts[1:]:
                fill_gaps(values, vrt.read(1, window=window, masked=True).astype(np.float64).filled(np.nan))
            out.write(ti, tj, values)
            finite = values[np.isfinite(values)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        if not math.isfinite(lo):
            for src, label in groups:
                if not any(np.isfinite(strip).any() for strip in _strips(src, tile * tile)):
                    raise LayerError(
                        f"the DEM raster {label} holds nodata everywhere", hint="check its nodata value"
                    )
            raise LayerError(
                f"the DEM raster {', '.join(str(p) for p in tiles)} does not overlap the basin grid",
                hint="check the area of interest and the raster's extent and CRS",
            )
    check_dem_range(tiles, lo, hi)
    return out


def _subpixels(src: rasterio.io.DatasetReader, grid: GridSpec, to_grid: Transformer) -> int:
    """``k`` of :func:`plastic_hotspots.maps.inputs.population.splat_counts` for the whole raster."""
    rows, cols = src.height, src.width
    transform = src.transform
    corner_x, corner_y = transform @ (0, 0)
    far_x, far_y = transform @ (cols, rows)
    gx, gy = to_grid.transform(np.array([corner_x, far_x]), np.array([corner_y, far_y]))
    pixel_m = (
        max(abs(gx[1] - gx[0]) / cols, abs(gy[1] - gy[0]) / rows) if abs(transform.a) else grid.cell_size
    )
    return max(1, math.ceil(2.0 * pixel_m / grid.cell_size))


def _source_window(
    src: rasterio.io.DatasetReader, grid: GridSpec, bounds: tuple[float, float, float, float]
) -> Window | None:
    """The source pixels under a box of the grid CRS, with a one-pixel margin; None if none."""
    box = transform_bounds(grid.crs, src.crs, *bounds, densify_pts=21)
    win = rasterio.windows.from_bounds(*box, transform=src.transform)
    col0 = max(math.floor(min(win.col_off, win.col_off + win.width)) - 1, 0)
    row0 = max(math.floor(min(win.row_off, win.row_off + win.height)) - 1, 0)
    col1 = min(math.ceil(max(win.col_off, win.col_off + win.width)) + 1, src.width)
    row1 = min(math.ceil(max(win.row_off, win.row_off + win.height)) + 1, src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def regrid_population_tiled(path: PopulationSource, grid: GridSpec, out_path: Path, tile: int) -> TiledRaster:
    """Load a people-per-pixel raster onto ``grid``, sum-preserving, tile by tile.

    Equal, bit for bit, to :func:`plastic_hotspots.maps.inputs.population.load_population` (see the module
    docstring). Population given as polygons is spread on each tile by
    :func:`plastic_hotspots.maps.inputs.divisions.spread_population` (each polygon measured on the whole
    grid, so again equal to the whole grid's).

    Args:
        path: The population raster (people per pixel, any CRS; WorldPop is EPSG:4326).
        grid: The grid.
        out_path: File of the tiled result.
        tile: Tile edge in cells.

    Returns:
        People per grid cell, float64.

    Raises:
        LayerError: The file is missing, has no CRS, holds nodata everywhere or negative counts,
            looks like a density, or does not overlap the grid.
    """
    layout = TileLayout(grid.height, grid.width, tile)
    if isinstance(path, PopulationPolygons):
        return _spread_divisions_tiled(read_divisions(path, grid), layout, out_path)
    require_file(path, "population")
    out = TiledRaster.create(out_path, layout, np.float64)
    with reading_layer(path, "population"), rasterio.open(path) as src:
        check_raster_crs(src, path, "population", POPULATION_CRS_HINT)
        lo, hi, any_people = math.inf, -math.inf, False
        for strip in _strips(src, tile * tile):
            finite = strip[np.isfinite(strip)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
                any_people = any_people or bool(np.any(finite > 0))
        check_population_range(path, src, lo, hi)
        to_grid = Transformer.from_crs(src.crs.to_string(), grid.crs, always_xy=True)
        k = _subpixels(src, grid, to_grid)
        offsets = (np.arange(k) + 0.5) / k
        total = 0.0
        for ti, tj in layout.tiles():
            r0, r1, c0, c1 = layout.window(ti, tj)
            cells = np.zeros((r1 - r0, c1 - c0), dtype=np.float64)
            window = _source_window(src, grid, tile_grid(grid, layout, ti, tj).bounds)
            if window is not None:
                data = read_band_nan(src, window)
                _splat_into(cells, data, window, src.transform, to_grid, grid, (r0, c0), offsets)
            out.write(ti, tj, cells)
            total += float(cells.sum())
    if any_people and total == 0.0:
        raise LayerError(
            f"the population raster {path} does not overlap the basin grid",
            hint="check the area of interest and the raster's extent and CRS",
        )
    return out


def _spread_divisions_tiled(divisions: DivisionPeople, layout: TileLayout, out_path: Path) -> TiledRaster:
    """People of population polygons on each tile of ``layout``."""
    out = TiledRaster.create(out_path, layout, np.float64)
    for ti, tj in layout.tiles():
        out.write(ti, tj, spread_population(divisions, layout.window(ti, tj)))
    return out


def _splat_into(
    cells: FloatArray,
    data: FloatArray,
    window: Window,
    transform: Affine,
    to_grid: Transformer,
    grid: GridSpec,
    origin: tuple[int, int],
    offsets: FloatArray,
) -> None:
    """Add the sub-pixels of ``data`` (read from ``window``) that land in the tile at ``origin``."""
    k = offsets.size
    valid = np.isfinite(data) & (data != 0)
    src_r, src_c = np.nonzero(valid)
    values = data[src_r, src_c] / (k * k)
    # Pixel indices of the whole raster, so the sub-pixel positions are the whole-raster ones.
    src_r = src_r + int(window.row_off)
    src_c = src_c + int(window.col_off)
    h, w = cells.shape
    r0, c0 = origin
    for dy in offsets:
        for dx in offsets:
            xs, ys = transform @ (src_c + dx, src_r + dy)
            px, py = to_grid.transform(np.asarray(xs), np.asarray(ys))
            c = np.floor((np.asarray(px) - grid.west) / grid.cell_size).astype(np.int64) - c0
            r = np.floor((grid.north - np.asarray(py)) / grid.cell_size).astype(np.int64) - r0
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            np.add.at(cells, (r[inside], c[inside]), values[inside])


def zones_for_tile(
    zones: gpd.GeoDataFrame, grid: GridSpec, layout: TileLayout, ti: int, tj: int, defaults: ZoneDefaults
) -> ZoneRasters:
    """Service zones rasterised on one tile (``zones`` already in the grid CRS).

    :func:`plastic_hotspots.maps.inputs.vectors.rasterize_zones` on the tile's grid.
    """
    sub = tile_grid(grid, layout, ti, tj)
    west, south, east, north = sub.bounds
    near = zones.cx[west:east, south:north] if len(zones) else zones
    return rasterize_zones(near, sub, defaults)
