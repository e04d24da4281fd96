"""Choosing and using the projected grid of a study area.

Storage and interchange are EPSG:4326 lon/lat; computation happens on one north-up grid in the UTM
zone of the area (:class:`~plastic_hotspots.records.GridSpec`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone CRS (``"EPSG:326xx"``/``"EPSG:327xx"``) containing a lon/lat point."""
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    if not infos:
        raise CRSError(f"no UTM zone found for lon {lon}, lat {lat}", hint="check the order is lon, lat")
    return f"{infos[0].auth_name}:{infos[0].code}"


def check_metric(crs: str) -> None:
    """Raise :class:`CRSError` unless ``crs`` is a projected CRS in metres."""
    parsed = CRS.from_user_input(crs)
    if not parsed.is_projected:
        raise CRSError(
            f"the grid CRS {crs} is geographic (degrees); the hotspot model needs metres",
            hint="leave `crs` out of the basin config to use the area's UTM zone, or name a projected CRS",
        )
    unit = parsed.axis_info[0].unit_name
    if unit not in ("metre", "meter"):
        raise CRSError(
            f"the grid CRS {crs} is in {unit}, not metres", hint="use a UTM zone (EPSG:326xx/327xx)"
        )


def grid_for_bounds(
    bounds_lonlat: tuple[float, float, float, float], cell_size: float, crs: str | None = None
) -> GridSpec:
    """The smallest grid of ``cell_size`` metres covering a lon/lat box.

    Args:
        bounds_lonlat: ``(west, south, east, north)`` in degrees.
        cell_size: Cell edge in metres.
        crs: Projected CRS to use; by default the UTM zone of the box centre.

    Returns:
        A grid whose edges are whole multiples of ``cell_size``.
    """
    west, south, east, north = bounds_lonlat
    if not (east > west and north > south):
        raise LayerError(f"empty area of interest {bounds_lonlat}", hint="give (west, south, east, north)")
    crs = crs or utm_crs_for((west + east) / 2, (south + north) / 2)
    check_metric(crs)
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = to_grid.transform(
        np.array([west, east, east, west, (west + east) / 2]),
        np.array([south, south, north, north, (south + north) / 2]),
    )
    x0 = math.floor(float(np.min(xs)) / cell_size) * cell_size
    x1 = math.ceil(float(np.max(xs)) / cell_size) * cell_size
    y0 = math.floor(float(np.min(ys)) / cell_size) * cell_size
    y1 = math.ceil(float(np.max(ys)) / cell_size) * cell_size
    return GridSpec(
        crs=crs,
        west=x0,
        north=y1,
        cell_size=cell_size,
        width=round((x1 - x0) / cell_size),
        height=round((y1 - y0) / cell_size),
    )


def cell_centres(grid: GridSpec) -> tuple[FloatArray, FloatArray]:
    """X and y of every cell centre, each of the grid's shape."""
    cols = grid.west + (np.arange(grid.width) + 0.5) * grid.cell_size
    rows = grid.north - (np.arange(grid.height) + 0.5) * grid.cell_size
    xs, ys = np.meshgrid(cols, rows)
    return xs.astype(np.float64), ys.astype(np.float64)


def rowcol(grid: GridSpec, x: FloatArray, y: FloatArray) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
    """Row and column of the cells holding points ``(x, y)``, and which points fall inside the grid."""
    cols = np.floor((np.asarray(x, dtype=np.float64) - grid.west) / grid.cell_size).astype(np.int64)
    rows = np.floor((grid.north - np.asarray(y, dtype=np.float64)) / grid.cell_size).astype(np.int64)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    return rows, cols, inside


def lonlat_to_grid(grid: GridSpec, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Project EPSG:4326 lon/lat to the grid CRS."""
    return _transform(Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True), lon, lat)


def grid_to_lonlat(grid: GridSpec, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Unproject grid-CRS coordinates to EPSG:4326 lon/lat."""
    return _transform(Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True), x, y)


def _transform(transformer: Transformer, a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Transform coordinate arrays of any shape (pyproj treats one-element arrays as scalars)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    shape = np.broadcast_shapes(a.shape, b.shape)
    a, b = np.broadcast_to(a, shape).ravel(), np.broadcast_to(b, shape).ravel()
    if a.size == 1:
        p, q = transformer.transform(float(a[0]), float(b[0]))
        return np.full(shape, p, dtype=np.float64), np.full(shape, q, dtype=np.float64)
    p, q = transformer.transform(a, b)
    return np.asarray(p, dtype=np.float64).reshape(shape), np.asarray(q, dtype=np.float64).reshape(shape)


def cell_lonlat(grid: GridSpec, rows: IntArray, cols: IntArray) -> tuple[FloatArray, FloatArray]:
    """EPSG:4326 lon/lat of the centres of the given cells."""
    x = grid.west + (np.asarray(cols, dtype=np.float64) + 0.5) * grid.cell_size
    y = grid.north - (np.asarray(rows, dtype=np.float64) + 0.5) * grid.cell_size
    return grid_to_lonlat(grid, x, y)


def grid_bounds_lonlat(grid: GridSpec) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees of the box holding the whole grid."""
    east = grid.west + grid.width * grid.cell_size
    south = grid.north - grid.height * grid.cell_size
    xs = np.array([grid.west, east, east, grid.west, (grid.west + east) / 2, (grid.west + east) / 2])
    ys = np.array([grid.north, grid.north, south, south, grid.north, south])
    lon, lat = grid_to_lonlat(grid, xs, ys)
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())
