"""Loading the input layers of a basin onto its grid, with their CRS checked.

* Rasters: DEM (bilinear), population (sum-preserving: every source pixel's people end up in the grid
  cells its area covers), land cover (nearest).
* Vectors: waste-collection zones, river network, barriers.
* Observations: survey points (the detector's per-image GeoParquet, pLitter track GeoJSON, or any
  point layer with an ``items`` column).

A missing CRS, a CRS in the wrong units, an area outside the grid or a layer with nodata everywhere
raises :class:`~maps.errors.LayerError` with what to do about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, overload

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
from rasterio import features
from rasterio.enums import MaskFlags
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from maps import compiled
from maps.density import Observations, track_effort_km
from maps.errors import CRSError, LayerError
from maps.grid import lonlat_to_grid
from maps.params import BarrierPass, ZoneDefaults
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyFloats = npt.NDArray[np.floating[Any]]


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise LayerError(f"{what} file not found: {path}", hint="check the path in the basin config")


def raster_bounds_lonlat(path: Path) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a raster in EPSG:4326."""
    _require_file(path, "raster")
    with rasterio.open(path) as src:
        if src.crs is None:
            raise CRSError(f"{path} has no CRS", hint="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
        from rasterio.warp import transform_bounds

        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return (float(west), float(south), float(east), float(north))


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


def load_raster(path: Path, grid: GridSpec, *, what: str, resampling: Resampling) -> FloatArray:
    """Reproject band 1 of a raster onto the grid; nodata becomes NaN."""
    _require_file(path, what)
    with rasterio.open(path) as src:
        if src.crs is None:
            raise CRSError(
                f"the {what} raster {path} has no CRS",
                hint="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`, or re-export it with its CRS",
            )
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


def splat_counts(
    counts: npt.NDArray[np.floating],
    transform: Affine,
    crs: str,
    grid: GridSpec,
) -> FloatArray:
    """Move a count raster (e.g. people per pixel) onto the grid, keeping totals.

    Each source pixel is split into ``k x k`` sub-pixels (``k`` chosen so a sub-pixel is at most half
    a grid cell), each carrying ``1 / k^2`` of its count to the grid cell under its centre. Totals of
    pixels inside the grid are kept exactly.

    The grid positions of the sub-pixel centres are interpolated bilinearly from a lattice of source
    positions transformed exactly (see :func:`_fit_lattice`); the few centres nearer a cell edge than
    the interpolation could be off (four times its worst error against exact transforms halfway between
    the lattice's nodes) are transformed exactly. So every sub-pixel lands in the cell its
    exact transform puts it in, and the additions are made in the same order as transforming every
    centre would: the result is that of the per-sub-pixel transform, bit for bit. Source rows are
    taken in chunks (compiled passes, :func:`_splat_pass`), so only the raster and the result are held
    whole.

    Args:
        counts: Counts per source pixel (float32 or float64); NaN and 0 add nothing.
        transform: The source raster's affine transform.
        crs: The source raster's CRS.
        grid: The grid.

    Returns:
        Counts per grid cell, float64.
    """
    from pyproj import Transformer

    rows, cols = counts.shape
    to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
    corner_x, corner_y = transform @ (0, 0)
    far_x, far_y = transform @ (cols, rows)
    gx, gy = to_grid.transform(np.array([corner_x, far_x]), np.array([corner_y, far_y]))
    px_w = abs(transform.a)
    pixel_m = max(abs(gx[1] - gx[0]) / cols, abs(gy[1] - gy[0]) / rows) if px_w else grid.cell_size
    k = max(1, int(np.ceil(2.0 * pixel_m / grid.cell_size)))
    place = _Placer(transform, to_grid, grid)
    lattice = _fit_lattice(place, rows, cols, budget=k * k * rows * cols)
    out = np.zeros(grid.shape, dtype=np.float64)
    flat = out.reshape(-1)
    offsets = [(float(dy), float(dx)) for dy in (np.arange(k) + 0.5) / k for dx in (np.arange(k) + 0.5) / k]
    # Passes, then source rows in order: each cell gets its additions in the same order as from one
    # pass over all pixels per sub-pixel offset.
    if lattice is not None:
        for dy, dx in offsets:
            _splat_pass(flat, counts, lattice, place, dy, dx, k)
        return out
    valid = np.isfinite(counts) & (counts != 0)
    step = max(1, _BLOCK_PIXELS // max(cols, 1))
    for dy, dx in offsets:
        for a in range(0, rows, step):
            rr, cc = np.nonzero(valid[a : a + step])
            idx = place.cells(rr + a, cc, dy, dx)
            keep = idx >= 0
            rr, cc = rr[keep], cc[keep]
            np.add.at(flat, idx[keep], counts[rr + a, cc].astype(np.float64) / (k * k))
    return out


_BLOCK_PIXELS = 1 << 16
"""Source pixels per block of :func:`splat_counts` without a lattice (a few hundred kB per temporary)."""
_LATTICE_STEP = 16
"""First spacing, in source pixels, of the exactly transformed lattice of :func:`_fit_lattice`."""
_LATTICE_TOL = 1e-3
"""Largest interpolation error accepted from a lattice, in grid cells; finer lattices are tried until then."""
_LATTICE_SAFETY = 4.0
"""Sub-pixel centres within this many times the lattice's measured error of a cell edge go exactly."""


@dataclass(frozen=True)
class _Placer:
    """Exact grid positions of source pixel positions (``row``, ``col`` in pixels, may be fractional)."""

    transform: Affine
    to_grid: Any
    grid: GridSpec

    def xy(self, rpos: AnyFloats, cpos: AnyFloats) -> tuple[FloatArray, FloatArray]:
        """Grid CRS ``x``, ``y``."""
        xs, ys = self.transform @ (cpos, rpos)
        xs, ys = np.asarray(xs), np.asarray(ys)
        if xs.size == 1:  # pyproj would take it for a scalar (deprecated by numpy): give it two
            xs, ys = np.repeat(xs, 2), np.repeat(ys, 2)
        px, py = self.to_grid.transform(xs, ys)
        return np.asarray(px, dtype=np.float64)[: rpos.size], np.asarray(py, dtype=np.float64)[: rpos.size]

    def cells(self, r: IntArray, c: IntArray, dy: float, dx: float) -> IntArray:
        """Flat index of the cell under each sub-pixel centre ``(r + dy, c + dx)``; -1 outside the grid."""
        grid = self.grid
        px, py = self.xy(r + dy, c + dx)
        col = np.floor((px - grid.west) / grid.cell_size)
        row = np.floor((grid.north - py) / grid.cell_size)
        inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
        flat = np.full(r.shape, -1, dtype=np.int64)
        flat[inside] = row[inside].astype(np.int64) * grid.width + col[inside].astype(np.int64)
        return flat

    def uv(self, rpos: FloatArray, cpos: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Grid column and row coordinates (in cells, not floored) at every ``(rpos[i], cpos[j])``."""
        grid = self.grid
        cc, rr = np.meshgrid(cpos, rpos)
        px, py = self.xy(rr.ravel(), cc.ravel())
        u = (px - grid.west) / grid.cell_size
        v = (grid.north - py) / grid.cell_size
        return u.reshape(rr.shape), v.reshape(rr.shape)


def _nodes(n: int, step: int) -> FloatArray:
    """Lattice positions along an axis of ``n`` pixels: every ``step`` pixels and the far edge."""
    return np.append(np.arange(0, n, step), n).astype(np.float64)


@dataclass(frozen=True)
class _Lattice:
    """Exact grid coordinates ``u`` (columns), ``v`` (rows) at the lattice nodes ``rows x cols``.

    ``margin`` (cells) bounds how far bilinear interpolation between the nodes can be off: the worst
    error measured halfway between nodes, times :data:`_LATTICE_SAFETY`.
    """

    step: int
    rows: FloatArray
    cols: FloatArray
    u: FloatArray
    v: FloatArray
    margin: float

    def interval(self, pos: AnyFloats, nodes: FloatArray) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Index of the node interval holding each position, and the position's fraction across it."""
        j = np.minimum((pos // self.step).astype(np.intp), nodes.size - 2)
        return j, (pos - nodes[j]) / (nodes[j + 1] - nodes[j])

    def along_cols(self, cpos: AnyFloats) -> tuple[FloatArray, FloatArray]:
        """``u``, ``v`` interpolated to columns ``cpos`` on every lattice row."""
        j, t = self.interval(cpos, self.cols)
        u = self.u[:, j] + t * (self.u[:, j + 1] - self.u[:, j])
        v = self.v[:, j] + t * (self.v[:, j + 1] - self.v[:, j])
        return u, v

    def at(self, rpos: FloatArray, cpos: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``u``, ``v`` interpolated at every ``(rpos[i], cpos[j])``."""
        u, v = self.along_cols(cpos)
        j, t = self.interval(rpos, self.rows)
        tc = t[:, None]
        return u[j] + tc * (u[j + 1] - u[j]), v[j] + tc * (v[j + 1] - v[j])


def _fit_lattice(place: _Placer, rows: int, cols: int, budget: int) -> _Lattice | None:
    """A lattice interpolating the grid coordinates of a ``rows x cols`` raster well enough, or None.

    Starting every :data:`_LATTICE_STEP` pixels, the lattice is checked against exact transforms at the
    midpoints between its nodes (where bilinear interpolation errs most) and halved until the worst
    error is at most :data:`_LATTICE_TOL` cells. None (transform every sub-pixel) when that would take
    more than ``budget`` exact transforms, or the transform fails somewhere (e.g. outside its domain).
    """
    step = _LATTICE_STEP
    while True:
        rn, cn = _nodes(rows, step), _nodes(cols, step)
        # The nodes and the midpoints between them; the nodes are every other one.
        rf = np.insert(rn, np.arange(1, rn.size), (rn[:-1] + rn[1:]) / 2.0)
        cf = np.insert(cn, np.arange(1, cn.size), (cn[:-1] + cn[1:]) / 2.0)
        if rf.size * cf.size > budget:
            return None
        u, v = place.uv(rf, cf)
        if not (np.isfinite(u).all() and np.isfinite(v).all()):
            return None
        lattice = _Lattice(step, rn, cn, u[::2, ::2], v[::2, ::2], 0.0)
        iu, iv = lattice.at(rf, cf)
        err = max(float(np.abs(iu - u).max()), float(np.abs(iv - v).max()))
        if err <= _LATTICE_TOL:
            return replace(lattice, margin=_LATTICE_SAFETY * err + 1e-9)
        if step == 1:
            return None
        step //= 2


def _splat_pass(
    flat: FloatArray,
    counts: npt.NDArray[np.floating],
    lattice: _Lattice,
    place: _Placer,
    dy: float,
    dx: float,
    k: int,
) -> None:
    """Add the sub-pixels at offset ``(dy, dx)`` of every valid pixel to ``flat`` (the grid, raveled).

    Source rows go in chunks of about :data:`_CHUNK_PIXELS`: the compiled
    :func:`maps.compiled.splat_locate` interpolates each sub-pixel's cell, the few too near a cell
    edge are transformed exactly, and :func:`maps.compiled.splat_add` adds them in row-major order.
    """
    rows, cols = counts.shape
    height, width = place.grid.height, place.grid.width
    u_at, v_at = lattice.along_cols(np.arange(cols) + dx)
    du, dv = np.diff(u_at, axis=0), np.diff(v_at, axis=0)
    # Per node interval and column, whether u and v can fall on the grid (interpolation stays between
    # the two nodes); per interval, the first and last such column bound the columns visited.
    u_lo, u_hi = np.minimum(u_at[:-1], u_at[1:]), np.maximum(u_at[:-1], u_at[1:])
    v_lo, v_hi = np.minimum(v_at[:-1], v_at[1:]), np.maximum(v_at[:-1], v_at[1:])
    near_grid = (u_hi > -1.0) & (u_lo < width + 1.0) & (v_hi > -1.0) & (v_lo < height + 1.0)
    some = np.asarray(near_grid.any(axis=1), dtype=np.bool_)
    first = np.where(some, np.argmax(near_grid, axis=1), 0)
    stop = np.where(some, cols - np.argmax(near_grid[:, ::-1], axis=1), 0)
    col_range = np.concatenate([first, stop]).astype(np.int64)
    node, frac = lattice.interval(np.arange(rows) + dy, lattice.rows)
    edge = 0.5 - lattice.margin
    step = max(1, _CHUNK_PIXELS // max(cols, 1))
    cells = np.empty(min(rows, step) * cols, dtype=np.int64)
    where = np.empty_like(cells)
    for a in range(0, rows, step):
        b = min(a + step, rows)
        if not some[node[a] : node[b - 1] + 1].any():
            continue
        placed, unsure = compiled.splat_locate(
            counts, (a, b), node, frac, col_range, (u_at, du, v_at, dv), edge, (height, width), cells, where
        )
        if unsure:
            at = np.flatnonzero(cells[:placed] == -2)
            rr, cc = np.divmod(where[at], cols)
            cells[at] = place.cells(rr, cc, dy, dx)
        compiled.splat_add(flat, cells[:placed], where[:placed], counts, float(k * k))


_CHUNK_PIXELS = 1 << 20
"""Source pixels per chunk of :func:`_splat_pass` (two int64 buffers of 8 MiB)."""


def check_population_range(path: Path, src: rasterio.io.DatasetReader, lowest: float, highest: float) -> None:
    """LayerError unless a people-per-pixel raster's finite values, ``lowest`` to ``highest``, make sense.

    It needs some data (``lowest`` is ``+inf`` when there is none), no negative counts, and no more
    people per square metre than any place holds (a density given instead of counts).
    """
    if not np.isfinite(lowest):
        raise LayerError(
            f"the population raster {path} holds nodata everywhere", hint="check its nodata value"
        )
    if lowest < 0:
        raise LayerError(
            f"the population raster {path} has negative counts", hint="give people per pixel (>= 0)"
        )
    densest = highest / _pixel_area_m2(src)
    if densest > MAX_PEOPLE_PER_M2:
        raise LayerError(
            f"the population raster {path} implies up to {densest:,.1f} people per square metre; "
            "its values look like a density, not people per pixel",
            hint="give people per pixel (WorldPop 'ppp' rasters), or multiply a people-per-km2 "
            "raster by each pixel's area in km2",
        )


def load_population(path: Path, grid: GridSpec) -> FloatArray:
    """Load a people-per-pixel raster onto the grid, sum-preserving (see :func:`splat_counts`)."""
    _require_file(path, "population")
    with rasterio.open(path) as src:
        if src.crs is None:
            raise CRSError(
                f"the population raster {path} has no CRS", hint="assign its CRS (WorldPop: EPSG:4326)"
            )
        # Float rasters stay in their own precision (WorldPop's float32 takes half the memory);
        # values are widened to float64 where they are added, exactly.
        data = read_band_nan(src, widen=False)
        lowest, highest, total = compiled.value_summary(data)
        check_population_range(path, src, lowest, highest)
        out = splat_counts(data, src.transform, src.crs.to_string(), grid)
    if total > 0 and float(out.sum()) == 0.0:
        raise LayerError(
            f"the population raster {path} does not overlap the basin grid",
            hint="check the area of interest and the raster's extent and CRS",
        )
    return out


MAX_PEOPLE_PER_M2 = 0.5
"""No real place holds more than this (the densest city blocks hold about 0.1 people per m2)."""


def _pixel_area_m2(src: rasterio.io.DatasetReader) -> float:
    """Area of one pixel in m2 (at the raster's centre latitude for geographic CRSs)."""
    width, height = abs(src.transform.a), abs(src.transform.e)
    if src.crs.is_geographic:
        lat = np.radians((src.bounds.top + src.bounds.bottom) / 2.0)
        return float(width * 111_320.0 * np.cos(lat) * height * 110_574.0)
    factor = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
    return float(width * height * factor * factor)


def read_vector(path: Path, what: str) -> gpd.GeoDataFrame:
    """Read a vector file and check it has a CRS."""
    _require_file(path, what)
    frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is None:
        raise CRSError(
            f"the {what} layer {path} has no CRS",
            hint="save it with its CRS (set it in QGIS, or with geopandas `set_crs`)",
        )
    return frame


@dataclass(frozen=True, slots=True, eq=False)
class ZoneRasters:
    """Waste figures per cell from the service zones (defaults where no zone covers a cell).

    Attributes:
        generation_kg_per_cap_day: Waste generated per person per day, per cell.
        plastic_share: Plastic share of the waste, per cell.
        collection_rate: Share of the waste collected, per cell.
        zone_id: Zone number of each cell (1, 2, ... in the zones' order; 0 outside every zone).
        by_zone: Each of the three figures per zone number (entry 0: the default), so that a figure
            at a few cells can be read as ``by_zone[name][zone_id[cells]]`` without its grid.
    """

    generation_kg_per_cap_day: FloatArray
    plastic_share: FloatArray
    collection_rate: FloatArray
    zone_id: npt.NDArray[np.int32]
    by_zone: dict[str, FloatArray]


ZONE_COLUMNS = ("generation_kg_per_cap_day", "plastic_share", "collection_rate")


def rasterize_zones(zones: gpd.GeoDataFrame, grid: GridSpec, defaults: ZoneDefaults) -> ZoneRasters:
    """Burn zone attributes into the grid (cell centre in polygon; later zones win overlaps)."""
    projected = zones.to_crs(grid.crs)
    transform = Affine(*grid.transform)
    # One burn of zone numbers (1, 2, ...; 0 outside every zone); each attribute is then looked up by
    # number, so later zones win overlaps for every attribute alike.
    ids = list(zip(projected.geometry, range(1, len(projected) + 1), strict=True))
    zone_id = (
        features.rasterize(ids, out_shape=grid.shape, transform=transform, fill=0, dtype="int32")
        if ids
        else np.zeros(grid.shape, dtype=np.int32)
    )
    out: dict[str, FloatArray] = {}
    by_zone: dict[str, FloatArray] = {}
    for column in ZONE_COLUMNS:
        default = float(getattr(defaults, column))
        if column in projected.columns:
            values = projected[column].astype(float).fillna(default).to_numpy()
        else:
            values = np.full(len(projected), default)
        if column != "generation_kg_per_cap_day" and ((values < 0) | (values > 1)).any():
            raise LayerError(
                f"zone column {column!r} must be a fraction in [0, 1]; got values up to {values.max():g}",
                hint="give fractions, not percentages (0.6, not 60)",
            )
        by_zone[column] = np.concatenate([[default], values]).astype(np.float64)
        out[column] = by_zone[column][zone_id]
    return ZoneRasters(
        out["generation_kg_per_cap_day"], out["plastic_share"], out["collection_rate"], zone_id, by_zone
    )


def rasterize_lines(lines: gpd.GeoDataFrame, grid: GridSpec) -> npt.NDArray[np.bool_]:
    """Cells touched by the lines of a river network."""
    projected = lines.to_crs(grid.crs)
    shapes = [(geom, 1) for geom in projected.geometry if geom is not None and not geom.is_empty]
    if not shapes:
        raise LayerError(
            "the river network has no lines inside the basin grid", hint="check its extent and CRS"
        )
    mask = features.rasterize(
        shapes,
        out_shape=grid.shape,
        transform=Affine(*grid.transform),
        fill=0,
        all_touched=True,
        dtype="uint8",
    )
    return np.asarray(mask, dtype=np.bool_)


@dataclass(frozen=True, slots=True, eq=False)
class Barriers:
    """Barriers located on the grid."""

    name: list[str]
    kind: list[str]
    x: FloatArray
    y: FloatArray
    pass_factor: FloatArray


def load_barriers(path: Path, grid: GridSpec, passes: BarrierPass) -> Barriers:
    """Read barrier points and place them on the grid.

    The layer needs a ``kind`` column (dam, weir, bridge, lock, port); ``name`` and ``pass_factor``
    are optional.
    """
    frame = read_vector(path, "barriers").to_crs(grid.crs)
    if "kind" not in frame.columns:
        raise LayerError(
            f"the barriers layer {path} has no `kind` column", hint="add kind = dam/weir/bridge/lock/port"
        )
    kinds = [str(k).strip().lower() for k in frame["kind"]]
    given = (
        frame["pass_factor"].to_numpy(dtype=float)
        if "pass_factor" in frame.columns
        else np.full(len(frame), np.nan)
    )
    factor = np.array(
        [g if np.isfinite(g) else passes.for_kind(k) for g, k in zip(given, kinds, strict=True)]
    )
    names = (
        [str(n) for n in frame["name"]]
        if "name" in frame.columns
        else [f"{k} {i + 1}" for i, k in enumerate(kinds)]
    )
    points = frame.geometry.representative_point()
    return Barriers(
        name=names,
        kind=kinds,
        x=points.x.to_numpy(dtype=np.float64),
        y=points.y.to_numpy(dtype=np.float64),
        pass_factor=factor.astype(np.float64),
    )


def read_plitter_tracks(path: Path) -> gpd.GeoDataFrame:
    """PLitter track GeoJSON as one point per detection row (EPSG:4326).

    Each feature's ``properties.track`` rows are ``[lon, lat, video_time_ms, count, c1, c2, c3, c4]``;
    an item is one of c1, c2, c3 (c4 are bins, kept as a column but not counted as litter). All four
    classes stay as ``n_c1`` .. ``n_c4``; the feature's ``video`` (or ``name``) is the track.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayerError(f"{path} is not valid GeoJSON: {exc}", hint="check the file") from exc
    rows = []
    for k, feature in enumerate(doc.get("features", []) if isinstance(doc, dict) else []):
        props = feature.get("properties") or {}
        track = str(props.get("video") or props.get("name") or f"track-{k}")
        for row in props.get("track") or []:
            if len(row) < 8:
                raise LayerError(
                    f"{path}: a track row has {len(row)} values, expected 8",
                    hint="rows are [lon, lat, video_ms, count, c1, c2, c3, c4]",
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
    """Survey points (EPSG:4326) from the detector's per-image GeoParquet or a pLitter track GeoJSON.

    Detector rows that were not usable (``status`` other than ``ok``) and rows without a position are
    dropped. Any other point layer with an ``items`` column (GeoParquet, GeoPackage, GeoJSON) works too.
    """
    path = Path(path)
    _require_file(path, "observations")
    if path.suffix.lower() in {".geojson", ".json"}:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
        if b'"track"' in head:
            return read_plitter_tracks(path)
    frame = (
        gpd.read_parquet(path)
        if path.suffix.lower() in (".parquet", ".geoparquet")
        else gpd.read_file(path, engine="pyogrio")
    )
    if frame.crs is None:
        raise CRSError(f"the observations {path} have no CRS", hint="write them as EPSG:4326 GeoParquet")
    if "items" not in frame.columns:
        raise LayerError(
            f"the observations {path} have no `items` column",
            hint="give one row per image with its item count (detect writes it in .images.parquet)",
        )
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise LayerError(
            f"the observations {path} hold no usable geotagged rows",
            hint="check that the images had positions (see detect's rejects table)",
        )
    return frame.to_crs("EPSG:4326")


def observations_on_grid(frame: gpd.GeoDataFrame, grid: GridSpec) -> Observations:
    """Project survey points (from :func:`read_observations`) to the grid, with effort per point.

    Points are ordered within their ``track`` by ``video_ms``, else ``captured_at``, else file order;
    ``effort_km`` is taken from the frame when present, else derived from the track spacing.
    """
    x, y = lonlat_to_grid(grid, frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    n = len(frame)
    track = frame["track"].astype(str).to_numpy() if "track" in frame.columns else np.full(n, "survey")
    order = np.arange(n, dtype=np.float64)
    if "video_ms" in frame.columns:
        order = frame["video_ms"].to_numpy(dtype=np.float64)
    elif "captured_at" in frame.columns:
        times = pd.to_datetime(frame["captured_at"], utc=True, errors="coerce", format="ISO8601")
        seconds = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        order = seconds.fillna(pd.Series(order, index=frame.index)).to_numpy()
    effort = (
        frame["effort_km"].to_numpy(dtype=np.float64)
        if "effort_km" in frame.columns
        else track_effort_km(x, y, track.astype(np.str_), order)
    )
    classes = {
        col[2:]: frame[col].to_numpy(dtype=np.float64) for col in frame.columns if col.startswith("n_")
    }
    return Observations(
        x=x,
        y=y,
        items=frame["items"].to_numpy(dtype=np.float64),
        track=track.astype(np.str_),
        effort_km=effort,
        classes=classes,
        image=frame["image"].astype(str).to_numpy().astype(np.str_) if "image" in frame.columns else None,
        captured_at=(
            frame["captured_at"].fillna("").astype(str).to_numpy().astype(np.str_)
            if "captured_at" in frame.columns
            else None
        ),
        path=frame["path"].astype(str).to_numpy().astype(np.str_) if "path" in frame.columns else None,
    )


def load_observations(path: Path, grid: GridSpec) -> Observations:
    """Read survey observations (see :func:`read_observations`) and project them to the grid."""
    return observations_on_grid(read_observations(path), grid)


def read_detections_beside(observations: Path) -> gpd.GeoDataFrame | None:
    """The detector's per-box table next to its per-image table (``X.parquet`` beside ``X.images.parquet``).

    Returns None when the observations are not a detector output or the boxes are not there.
    """
    name = observations.name
    if not name.endswith(".images.parquet"):
        return None
    boxes = observations.with_name(name[: -len(".images.parquet")] + ".parquet")
    if not boxes.is_file():
        return None
    frame = gpd.read_parquet(boxes)
    needed = {"image", "class_name", "score", "x1", "y1", "x2", "y2"}
    if not needed <= set(frame.columns):
        return None
    return frame.to_crs("EPSG:4326") if frame.crs is not None else None


BOUNDARY_NAME_COLUMNS = ("name", "NAME", "ADM3_EN", "ADM2_EN", "ADM1_EN", "shapeName", "NAME_2", "NAME_1")
"""Columns tried, in order, for an administrative unit's name (OCHA COD, geoBoundaries, GADM)."""


def load_boundaries(path: Path, bounds_lonlat: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Administrative boundaries (EPSG:4326) clipped to the area, with one ``name`` column.

    Args:
        path: Any polygon layer with a CRS.
        bounds_lonlat: ``(west, south, east, north)`` of the area.

    Returns:
        The units touching the area, clipped to it, with ``name`` from the first of
        :data:`BOUNDARY_NAME_COLUMNS` present.
    """
    from shapely.geometry import box

    frame = read_vector(path, "boundaries").to_crs("EPSG:4326")
    frame = frame[frame.geometry.notna() & frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    area = box(*bounds_lonlat)
    frame = frame[frame.geometry.intersects(area)]
    if frame.empty:
        raise LayerError(
            f"no boundary in {path} touches the basin's area {list(bounds_lonlat)}",
            hint="check the boundaries file covers this basin (and its CRS), or leave it out",
        )
    column = next((c for c in BOUNDARY_NAME_COLUMNS if c in frame.columns), None)
    names = frame[column].astype(str) if column else pd.Series([f"unit {k + 1}" for k in range(len(frame))])
    return gpd.GeoDataFrame(
        {"name": names.to_numpy()}, geometry=frame.geometry.intersection(area).to_numpy(), crs="EPSG:4326"
    )
