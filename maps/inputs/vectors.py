"""Vector input layers onto a basin's grid: service zones, river lines, barriers, boundaries."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from rasterio import features
from rasterio.transform import Affine

from plastic_hotspots.maps.config import (
    FRACTION_ATTRIBUTES,
    ZONE_ATTRIBUTES,
    ZoneSource,
    ZoneTable,
    ZoneValue,
)
from plastic_hotspots.maps.errors import CRSError, LayerError, LayerWarning
from plastic_hotspots.maps.inputs.rasters import reading_layer, require_file
from plastic_hotspots.maps.params import BarrierPass, ZoneDefaults
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


VECTOR_CRS_HINT = "save it with its CRS (set it in QGIS, or with geopandas `set_crs`)"
"""How to fix a vector layer without a CRS."""


def read_vector(path: Path, what: str) -> gpd.GeoDataFrame:
    """Read a vector file and check it has a CRS."""
    require_file(path, what)
    with reading_layer(path, what):
        frame = gpd.read_file(path, engine="pyogrio")
    if frame.crs is None:
        raise CRSError(f"the {what} layer {path} has no CRS", hint=VECTOR_CRS_HINT)
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


ZONE_COLUMNS = ZONE_ATTRIBUTES


def repair_polygons(frame: gpd.GeoDataFrame, path: Path, what: str) -> gpd.GeoDataFrame:
    """The polygons of a layer made valid and wound the standard way (exteriors counter-clockwise).

    Invalid geometries (self-intersections, ...) are repaired by ``shapely.make_valid``, keeping their
    polygonal parts (``buffer(0)`` where that leaves none); rows without a polygon are left out. A
    :class:`~plastic_hotspots.maps.errors.LayerWarning` says how many of each.
    """
    import shapely

    geoms = frame.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    invalid = ~missing & ~shapely.is_valid(geoms)
    fixed = geoms.copy()
    for i in np.flatnonzero(invalid):
        fixed[i] = _polygonal(shapely.make_valid(geoms[i])) or _polygonal(shapely.buffer(geoms[i], 0))
    oriented = np.array(fixed, dtype=object)
    keep = ~missing
    oriented[keep] = shapely.orient_polygons(fixed[keep])
    rewound = int(np.count_nonzero(keep & ~invalid & ~shapely.equals_exact(oriented, geoms, tolerance=0)))
    polygonal = np.array([_polygonal(g) is not None for g in oriented], dtype=bool)
    dropped = int(np.count_nonzero(~polygonal))
    if invalid.any() or rewound or dropped:
        warnings.warn(
            f"the {what} layer {path}: {int(invalid.sum())} invalid geometries repaired, "
            f"{rewound} rings rewound, {dropped} rows without a polygon left out",
            LayerWarning,
            stacklevel=3,
        )
    out = frame.iloc[np.flatnonzero(polygonal)].copy()
    out = out.set_geometry(gpd.GeoSeries(oriented[polygonal], index=out.index, crs=frame.crs))
    return out


def _polygonal(geom: object) -> object | None:
    """The polygon or multipolygon parts of a geometry, or None where it has none."""
    import shapely
    from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

    if geom is None or shapely.is_empty(geom):
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        polygon: object = geom
        return polygon
    if isinstance(geom, GeometryCollection):
        parts = [g for g in geom.geoms if isinstance(g, Polygon | MultiPolygon) and not g.is_empty]
        union: object = shapely.union_all(parts)
        return union if parts else None
    return None


def _plain_zones(path: Path) -> gpd.GeoDataFrame:
    """A zones file read as it is: it must hold zones, and the figures under their own names.

    Raises:
        LayerError: No feature, or none of the columns of :data:`ZONE_COLUMNS` (defaults everywhere
            would pass unnoticed).
    """
    frame = read_vector(path, "zones")
    if frame.empty:
        raise LayerError(
            f"the zones layer {path} has no features",
            hint="give the service zones' polygons, or leave `zones` out to use the defaults everywhere",
        )
    present = [c for c in ZONE_COLUMNS if c in frame.columns]
    if not present:
        raise LayerError(
            f"the zones layer {path} has none of the columns {', '.join(ZONE_COLUMNS)}",
            hint="name the figures' columns: `zones: {path: FILE, collection_rate: COLUMN}` "
            "(a column, a ratio 'a / b', or a number)",
        )
    missing = [c for c in ZONE_COLUMNS if c not in frame.columns]
    if missing:
        warnings.warn(
            f"the zones layer {path} has no {', '.join(missing)} column: the default is used for it",
            LayerWarning,
            stacklevel=3,
        )
    for column in present:
        _refuse_words(frame, column, path, hint=f"write {column} as a number in every zone")
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    return frame


def not_numbers(values: pd.Series) -> pd.Series:
    """Where a column holds something that is no number ("high", "half"); empty values are not counted."""
    return values.notna() & pd.to_numeric(values, errors="coerce").isna()


def _refuse_words(frame: gpd.GeoDataFrame, column: str, path: Path, *, hint: str) -> None:
    """Refuse a zones column holding text that is no number (an empty value is allowed: the default)."""
    words = not_numbers(frame[column])
    if words.any():
        raise LayerError(
            f"the zones layer {path}: {int(words.sum())} of {len(frame)} zones' {column} is not a number "
            f"(e.g. {frame.loc[words, column].iloc[0]!r})",
            hint=f"{hint} (leave it empty where unknown: the default is used there)",
        )


def read_zones(source: ZoneSource, defaults: ZoneDefaults | None = None) -> gpd.GeoDataFrame:
    """Service zones with the columns :func:`rasterize_zones` reads.

    A plain path is read as it is (its columns named as in :data:`ZONE_COLUMNS`). A
    :class:`~plastic_hotspots.maps.config.ZoneTable` reads any polygon layer: each figure it names is
    a column, the ratio of two columns, or one number for every zone. Invalid geometries are
    repaired (:func:`repair_polygons`); a figure that comes out NaN or infinite (a ratio over 0
    households) is left NaN, so that :func:`rasterize_zones` uses the default there, with a warning
    saying how many.

    Raises:
        LayerError: A column is missing, or a fraction (plastic share, collection rate) falls outside
            [0, 1].
    """
    if not isinstance(source, ZoneTable):
        return _plain_zones(source)
    frame = repair_polygons(read_vector(source.path, "zones"), source.path, "zones")
    out = gpd.GeoDataFrame(geometry=frame.geometry.to_numpy(), crs=frame.crs)
    for name in ZONE_COLUMNS:
        how = source.get(name)
        if how is None:
            continue
        values = _zone_values(frame, how, source.path, name)
        bad = ~np.isfinite(values)
        if bad.any():
            fallback = getattr(defaults, name) if defaults is not None else "the default"
            warnings.warn(
                f"the zones layer {source.path}: {int(bad.sum())} of {values.size} zones have no finite "
                f"{name} ({how}); {fallback} is used there",
                LayerWarning,
                stacklevel=2,
            )
            values[bad] = np.nan
        if name in FRACTION_ATTRIBUTES:
            outside = np.isfinite(values) & ((values < 0) | (values > 1))
            if outside.any():
                raise LayerError(
                    f"the zones' {name} from {how!s} in {source.path} must be a fraction in [0, 1]; "
                    f"{int(outside.sum())} zones have values from {np.nanmin(values):g} to "
                    f"{np.nanmax(values):g}",
                    hint="check the columns (a share of households: served / all households), "
                    "or give fractions, not percentages",
                )
        out[name] = values
    return out


def _zone_values(frame: gpd.GeoDataFrame, how: ZoneValue, path: Path, name: str) -> FloatArray:
    """One zone figure per row of ``frame``, as ``how`` says (float64; NaN where a value is missing)."""
    if how.number is not None:
        return np.full(len(frame), how.number, dtype=np.float64)
    columns = [c for c in (how.column, how.denominator) if c is not None]
    # A column whose name holds a slash is taken whole, not as a ratio.
    whole = f"{how.column}/{how.denominator}"
    if how.denominator is not None and whole not in frame.columns:
        spaced = f"{how.column} / {how.denominator}"
        whole = spaced if spaced in frame.columns else whole
    if how.denominator is not None and whole in frame.columns:
        columns = [whole]
    for column in columns:
        if column not in frame.columns:
            known = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
            raise LayerError(
                f"the zones layer {path} has no column {column!r} (for {name})",
                hint=f"its columns: {known}",
            )
    for column in columns:
        _refuse_words(frame, column, path, hint=f"the column {column!r} (for {name}) must hold numbers")
    numbers: list[FloatArray] = [
        np.asarray(pd.to_numeric(frame[c], errors="coerce"), dtype=np.float64) for c in columns
    ]
    if len(numbers) == 1:
        return numbers[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: FloatArray = numbers[0] / numbers[1]
    return ratio


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
    if "pass_factor" in frame.columns:
        words = not_numbers(frame["pass_factor"])
        if words.any():
            rows = ", ".join(str(int(i) + 1) for i in np.flatnonzero(words.to_numpy())[:5])
            raise LayerError(
                f"the barriers layer {path}: pass_factor must be a fraction in [0, 1], got "
                f"{frame.loc[words, 'pass_factor'].iloc[0]!r} in row(s) {rows}",
                hint="write the share of the load that passes (0.7), or leave pass_factor empty to use the "
                "kind's default",
            )
        given = pd.to_numeric(frame["pass_factor"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        given = np.full(len(frame), np.nan)
    bad = np.isfinite(given) & ((given < 0) | (given > 1))
    if bad.any():
        rows = ", ".join(str(int(i) + 1) for i in np.flatnonzero(bad)[:5])
        raise LayerError(
            f"the barriers layer {path}: pass_factor must be a fraction in [0, 1] (the share of the load "
            f"that passes), got {', '.join(f'{v:g}' for v in given[bad][:5])} in row(s) {rows}",
            hint="fix those values, or leave pass_factor empty to use the kind's default",
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


BOUNDARY_NAME_COLUMNS = (
    "name",
    "NAME",
    "ADM3_EN",
    "ADM2_EN",
    "ADM1_EN",
    "adm3_name",
    "adm2_name",
    "adm1_name",
    "shapeName",
    "NAME_2",
    "NAME_1",
)
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
    frame = repair_polygons(frame[frame.geometry.intersects(area)], path, "boundaries")
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
