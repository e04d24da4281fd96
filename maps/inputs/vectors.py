"""Vector input layers onto a basin's grid: service zones, river lines, barriers, boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from rasterio import features
from rasterio.transform import Affine

from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.maps.inputs.rasters import require_file
from plastic_hotspots.maps.params import BarrierPass, ZoneDefaults
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


def read_vector(path: Path, what: str) -> gpd.GeoDataFrame:
    """Read a vector file and check it has a CRS."""
    require_file(path, what)
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
