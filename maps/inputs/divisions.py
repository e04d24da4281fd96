"""Population given as polygons with a count (census divisions) spread over a basin's grid by area.

Each polygon's people are spread over the cells it covers in proportion to the area it has in each:
a cell gets ``count x (area of the polygon in the cell / area of the polygon)``. The people of the part
of a polygon outside the grid are left out (and reported), so the grid's total is the sum over the
polygons of ``count x share of the polygon inside the grid`` (the shares from exact polygon areas).

How the area inside each cell is measured: supersampling. The polygon, clipped to the grid, is
burned (cell centre in polygon) on a lattice ``f`` times finer than the grid over its bounding box,
and the burned sub-cells are summed per cell; the polygon's people inside the grid are then shared
in proportion to those sums. ``f`` is :data:`SUPERSAMPLE` (a sub-cell of 1/100 of a cell: areas within
about 1 % of a cell's area along the polygon's edge), less for polygons so large that the finer
lattice would pass :data:`MAX_SUBCELLS`, where the edge matters less. A polygon too small to hold a
sub-cell centre puts all its people in the cell holding its representative point. The 3,051 census
divisions of the Maha Oya region take a few seconds on a 1000 x 1000 grid; exact overlays (a
polygon intersection per cell) would be exact but much slower on fine grids.

Both run modes use :func:`spread_population` on a window of the grid (the whole grid, or one tile):
each polygon is measured on the whole grid, so the tiles add up to the whole grid exactly.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from rasterio import features
from rasterio.transform import Affine

from plastic_hotspots.maps.config import PopulationPolygons
from plastic_hotspots.maps.errors import LayerError, LayerWarning
from plastic_hotspots.maps.inputs.vectors import read_vector, repair_polygons
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]

logger = logging.getLogger(__name__)

SUPERSAMPLE = 10
"""Sub-cells per cell edge when measuring a polygon's area in each cell."""
SHARE_TOLERANCE = 1e-9
"""A polygon with at least ``1 - SHARE_TOLERANCE`` of its area inside the grid counts as wholly inside."""
MAX_SUBCELLS = 16_000_000
"""Most sub-cells burned for one polygon (a coarser lattice beyond: 128 MB of uint8 at most)."""


@dataclass(frozen=True, slots=True, eq=False)
class DivisionPeople:
    """Polygons in the grid's CRS, clipped to the grid, each with the people of that part.

    Attributes:
        geometries: The polygons' parts inside the grid (shapely geometries).
        people: ``count x share of the polygon inside the grid``, per polygon.
        grid: The grid they were clipped to.
    """

    geometries: npt.NDArray[np.object_]
    people: FloatArray
    grid: GridSpec

    @property
    def total(self) -> float:
        """People inside the grid."""
        return float(self.people.sum())


def read_divisions(layer: PopulationPolygons, grid: GridSpec) -> DivisionPeople:
    """Read population polygons, repair them, and keep what lies inside the grid.

    Rows whose count is missing, not a number or negative are left out, with a
    :class:`~plastic_hotspots.maps.errors.LayerWarning` saying how many; invalid geometries are repaired
    (:func:`plastic_hotspots.maps.inputs.vectors.repair_polygons`). People in polygons wholly or partly
    outside the grid are logged: "N people in M divisions lie outside the grid".

    Raises:
        LayerError: The file is missing, has no CRS or no such count column, no row has a usable count,
            or no polygon with people touches the grid.
    """
    import shapely
    from shapely.geometry import box

    frame = read_vector(layer.path, "population")
    if layer.count not in frame.columns:
        known = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise LayerError(
            f"the population layer {layer.path} has no column {layer.count!r}",
            hint=f"set `population.count` to the column of people per polygon; its columns: {known}",
        )
    counts = pd.to_numeric(frame[layer.count], errors="coerce").to_numpy(dtype=np.float64)
    usable = np.isfinite(counts) & (counts >= 0)
    if len(frame) and not usable.any():
        raise LayerError(
            f"the population layer {layer.path} has no usable {layer.count!r}: every row's is missing, "
            "not a number or negative",
            hint="set `population.count` to a column that holds the number of people of each polygon",
        )
    if not usable.all():
        warnings.warn(
            f"the population layer {layer.path}: {int((~usable).sum())} of {len(frame)} rows have a "
            f"missing or negative {layer.count!r} and are left out",
            LayerWarning,
            stacklevel=2,
        )
    frame = frame.assign(_people=counts)[usable]
    frame = repair_polygons(frame, layer.path, "population").to_crs(grid.crs)
    geoms = frame.geometry.to_numpy()
    counts = frame["_people"].to_numpy(dtype=np.float64)
    area = shapely.area(geoms)
    inside = shapely.intersection(geoms, box(*grid.bounds))
    inner_area = shapely.area(inside)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(area > 0, np.minimum(inner_area / area, 1.0), 0.0)
    # A polygon wholly inside loses a few ulps to the intersection: it keeps all its people.
    share[share > 1.0 - SHARE_TOLERANCE] = 1.0
    people = counts * share
    outside = counts - people
    cut = (share < 1.0) & (counts > 0)
    if cut.any():
        logger.warning(
            "%s people in %d divisions lie outside the grid (of %s in %d divisions in %s)",
            f"{float(outside[cut].sum()):,.0f}",
            int(cut.sum()),
            f"{float(counts.sum()):,.0f}",
            len(counts),
            layer.path.name,
        )
    keep = (inner_area > 0) & (people > 0)
    if counts.sum() > 0 and not keep.any():
        raise LayerError(
            f"no polygon of the population layer {layer.path} with people touches the basin grid",
            hint="check the area of interest and the layer's extent and CRS",
        )
    return DivisionPeople(inside[keep], people[keep], grid)


def spread_population(
    divisions: DivisionPeople, window: tuple[int, int, int, int] | None = None
) -> FloatArray:
    """People per cell of a window ``(r0, r1, c0, c1)`` of the grid (default: the whole grid).

    Each polygon is measured on the whole grid (see the module docstring), then the cells of the
    window are kept: windows tiling the grid add up to the whole grid, cell by cell.
    """
    import shapely

    grid = divisions.grid
    r0, r1, c0, c1 = window or (0, grid.height, 0, grid.width)
    out = np.zeros((r1 - r0, c1 - c0), dtype=np.float64)
    size = grid.cell_size
    bounds = shapely.bounds(divisions.geometries)
    # Cell windows of each polygon's bounding box, clipped to the grid.
    pc0 = np.clip(np.floor((bounds[:, 0] - grid.west) / size), 0, grid.width).astype(np.int64)
    pc1 = np.clip(np.ceil((bounds[:, 2] - grid.west) / size), 0, grid.width).astype(np.int64)
    pr0 = np.clip(np.floor((grid.north - bounds[:, 3]) / size), 0, grid.height).astype(np.int64)
    pr1 = np.clip(np.ceil((grid.north - bounds[:, 1]) / size), 0, grid.height).astype(np.int64)
    near = np.flatnonzero((pr0 < r1) & (pr1 > r0) & (pc0 < c1) & (pc1 > c0))
    for i in near:
        box_r0, box_c0 = int(pr0[i]), int(pc0[i])
        cover = _coverage(divisions.geometries[i], grid, box_r0, int(pr1[i]), box_c0, int(pc1[i]))
        share = divisions.people[i] * cover
        a0, a1 = max(box_r0, r0), min(box_r0 + share.shape[0], r1)
        b0, b1 = max(box_c0, c0), min(box_c0 + share.shape[1], c1)
        if a1 > a0 and b1 > b0:
            out[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] += share[
                a0 - box_r0 : a1 - box_r0, b0 - box_c0 : b1 - box_c0
            ]
    return out


def _coverage(geom: object, grid: GridSpec, r0: int, r1: int, c0: int, c1: int) -> FloatArray:
    """The share of a polygon's area in each cell of the window ``r0:r1, c0:c1`` (summing to 1)."""
    import shapely

    h, w = max(r1 - r0, 1), max(c1 - c0, 1)
    f = max(1, min(SUPERSAMPLE, math.isqrt(MAX_SUBCELLS // (h * w))))
    size = grid.cell_size
    transform = Affine(size / f, 0.0, grid.west + c0 * size, 0.0, -size / f, grid.north - r0 * size)
    fine = features.rasterize(
        [(geom, 1)], out_shape=(h * f, w * f), transform=transform, fill=0, dtype="uint8"
    )
    counts: FloatArray = np.asarray(fine.reshape(h, f, w, f).sum(axis=(1, 3)), dtype=np.float64)
    total = counts.sum()
    if total > 0:
        return np.asarray(counts / total, dtype=np.float64)
    # Smaller than a sub-cell: all in the cell holding its representative point.
    point = shapely.point_on_surface(geom)
    row = min(max(int((grid.north - point.y) // size) - r0, 0), h - 1)
    col = min(max(int((point.x - grid.west) // size) - c0, 0), w - 1)
    counts[row, col] = 1.0
    return counts


def load_population_polygons(layer: PopulationPolygons, grid: GridSpec) -> FloatArray:
    """People per grid cell from population polygons (:func:`read_divisions`, :func:`spread_population`)."""
    return spread_population(read_divisions(layer, grid))
