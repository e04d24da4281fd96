"""Population counts regridded sum-preserving onto a basin's grid."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.transform import Affine

from plastic_hotspots.maps.config import PopulationPolygons, PopulationSource
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.inputs.divisions import load_population_polygons
from plastic_hotspots.maps.inputs.rasters import check_raster_crs, reading_layer, require_file
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.maps.kernels import compiled
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AnyFloats = npt.NDArray[np.floating[Any]]


POPULATION_CRS_HINT = "assign its CRS (WorldPop: EPSG:4326)"
"""How to fix a population raster without a CRS."""

MAX_PEOPLE_PER_M2 = 0.5
"""No real place holds more than this (the densest city blocks hold about 0.1 people per m2)."""


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
    :func:`plastic_hotspots.maps.kernels.compiled.splat_locate` interpolates each sub-pixel's cell, the few
    too near a cell
    edge are transformed exactly, and :func:`plastic_hotspots.maps.kernels.compiled.splat_add` adds them in
    row-major order.
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


def load_population(path: PopulationSource, grid: GridSpec) -> FloatArray:
    """Load a people-per-pixel raster onto the grid, sum-preserving (see :func:`splat_counts`).

    Population given as polygons with a count is spread over them by area
    (:func:`plastic_hotspots.maps.inputs.divisions.load_population_polygons`).
    """
    if isinstance(path, PopulationPolygons):
        return load_population_polygons(path, grid)
    require_file(path, "population")
    with reading_layer(path, "population"), rasterio.open(path) as src:
        check_raster_crs(src, path, "population", POPULATION_CRS_HINT)
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


def _pixel_area_m2(src: rasterio.io.DatasetReader) -> float:
    """Area of one pixel in m2 (at the raster's centre latitude for geographic CRSs)."""
    width, height = abs(src.transform.a), abs(src.transform.e)
    if src.crs.is_geographic:
        lat = np.radians((src.bounds.top + src.bounds.bottom) / 2.0)
        return float(width * 111_320.0 * np.cos(lat) * height * 110_574.0)
    factor = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
    return float(width * height * factor * factor)
