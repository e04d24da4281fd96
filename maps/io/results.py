"""The hotspot result directory (``plastic-hotspots hotspots --out DIR``): what it holds, and reading it.

:data:`RASTERS`, :data:`VECTORS` and the files beside them (:data:`GEOPACKAGE`, :data:`PROVENANCE_FILE`,
:data:`FUSION_JSON`, :data:`FUSION_PNG`, :data:`UNCERTAINTY_JSON`, the large mode's :data:`WORK_FOLDER`)
are the one schema of the directory: every file and layer the model writes, with its name, unit and
description. Writers take names, band descriptions and unit tags from here
(``RASTERS["river_load"].description``); the map and the report find files through it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import geopandas as gpd
import pyogrio

from plastic_hotspots.maps.errors import RenderError
from plastic_hotspots.records import LayerKind

HOTSPOTS_COMMAND = "plastic-hotspots hotspots --config basin.yaml --out DIR"

FeatureKind = Literal["polygon", "line", "point", "none"]


@dataclass(frozen=True, slots=True)
class ResultFile:
    """A file of the result directory other than the rasters.

    Attributes:
        filename: Its name in the directory.
        description: What it holds.
    """

    filename: str
    description: str

    def path(self, result_dir: Path) -> Path:
        """Where it is in ``result_dir``."""
        return Path(result_dir) / self.filename


@dataclass(frozen=True, slots=True)
class RasterLayer:
    """A raster of the result: one float32 band, a Cloud-Optimised GeoTIFF ``<name>.tif``.

    Attributes:
        name: Layer name (the file's stem; the key of :class:`plastic_hotspots.records.Layer`).
        unit: Unit of the values, written as the band's ``unit`` tag.
        kind: How it may be resampled (``count``: sum-preserving; ``continuous``: averaged).
        description: The band description written into the file.
        low: The smallest value a cell with data may hold (docs/hotspot-model.md, Outputs).
        high: The largest value a cell with data may hold; cells without data are NaN.
    """

    name: str
    unit: str
    kind: LayerKind
    description: str
    low: float = 0.0
    high: float = math.inf

    @property
    def filename(self) -> str:
        """``<name>.tif``."""
        return f"{self.name}.tif"

    def path(self, result_dir: Path) -> Path:
        """Where it is in ``result_dir``."""
        return Path(result_dir) / self.filename


@dataclass(frozen=True, slots=True)
class VectorLayer:
    """A layer of ``hotspots.gpkg`` (EPSG:4326).

    Attributes:
        name: Layer name in the GeoPackage.
        unit: Unit of its values (the ``*_kg_yr``, ``value`` or ``rate`` columns); "" where it has none.
        features: What its features are (``none``: a table without geometry).
        description: What it holds, with its main columns.
        copied: Copied into the result from an input (not made by the model).
    """

    name: str
    unit: str
    features: FeatureKind
    description: str
    copied: bool = False


_Entry = TypeVar("_Entry", RasterLayer, VectorLayer)


def _by_name(*entries: _Entry) -> Mapping[str, _Entry]:
    return MappingProxyType({entry.name: entry for entry in entries})


RASTERS: Mapping[str, RasterLayer] = _by_name(
    RasterLayer("dem", "m", "continuous", "conditioned DEM", low=-500.0, high=9000.0),
    RasterLayer("population", "people", "count", "people per cell"),
    RasterLayer("mismanaged_plastic", "kg/yr", "count", "L_src"),
    RasterLayer("p_land", "1", "continuous", "probability of reaching a river", high=1.0),
    RasterLayer("leakage_index", "kg/yr", "count", "plastic entering rivers"),
    RasterLayer("river_load", "kg/yr", "continuous", "load carried"),
    RasterLayer("accumulation", "kg/yr", "count", "load retained"),
    RasterLayer("flow_accumulation", "km2", "continuous", "upstream area"),
)
"""Every raster of the result, by name, in the order they are written (whole grid and large mode)."""

VECTORS: Mapping[str, VectorLayer] = _by_name(
    VectorLayer("basin", "km2", "polygon", "basin outline: name, area_km2"),
    VectorLayer(
        "subbasins",
        "kg/yr",
        "polygon",
        "sub-basins: subbasin, name, area_km2, leakage_kg_yr (plastic entering rivers), "
        "accumulation_kg_yr (load retained)",
    ),
    VectorLayer("rivers", "", "line", "river network, one multi-line per stream order: order"),
    VectorLayer(
        "barriers",
        "kg/yr",
        "point",
        "dams, weirs, bridges and ports: name, kind, pass_factor, on_river, retained_kg_yr",
    ),
    VectorLayer(
        "leakage_hotspots",
        "kg/yr",
        "point",
        "ranked leakage-source hotspots: rank, value (plastic entering rivers), unit, driver, row, col "
        "and the drivers' values",
    ),
    VectorLayer(
        "accumulation_hotspots",
        "kg/yr",
        "point",
        "ranked accumulation hotspots: rank, value (load retained), unit, driver, row, col and the "
        "drivers' values",
    ),
    VectorLayer(
        "observed_density",
        "items per observation",
        "polygon",
        "grid cells with any observation: observations, effort_km, items, rate (rate_lo, rate_hi), "
        "surveyed, n_<class>, gi_z, gi_p; modelled_rate and far_above_model once calibrated",
    ),
    VectorLayer(
        "survey_points",
        "items",
        "point",
        "one point per observation: items, track, captured_at, image, path, n_<class>",
    ),
    VectorLayer(
        "detections",
        "",
        "point",
        "the detector's boxes in the survey's images: image, class_name, score, x1, y1, x2, y2",
        copied=True,
    ),
    VectorLayer(
        "admin_boundaries",
        "",
        "polygon",
        "administrative units clipped to the basin's area: name",
        copied=True,
    ),
    VectorLayer("provenance", "", "none", "how the result was made: key 'provenance', value its JSON"),
)
"""Every layer of ``hotspots.gpkg``, by name; all but ``basin`` and ``provenance`` may be absent."""

GEOPACKAGE = ResultFile("hotspots.gpkg", "the vector layers (:data:`VECTORS`)")
PROVENANCE_FILE = ResultFile("provenance.json", "how the result was made: tool, version, parameters, inputs")
FUSION_JSON = ResultFile("fusion.json", "the calibration against the survey and a one-line summary")
FUSION_PNG = ResultFile(
    "fusion.png", "modelled and observed litter rates side by side, and one against the other"
)
UNCERTAINTY_JSON = ResultFile(
    "uncertainty.json",
    "basin totals and hotspot ranks over parameter sets drawn from plausible ranges, and each "
    "parameter's one-at-a-time sensitivity ('draws': 0 and a 'note' where none were drawn)",
)
FILES: tuple[ResultFile, ...] = (GEOPACKAGE, PROVENANCE_FILE, FUSION_JSON, FUSION_PNG, UNCERTAINTY_JSON)
"""The files beside the rasters; the fusion files only where a survey calibrated the model."""
WORK_FOLDER = ResultFile(".work", "the large mode's intermediate tiles (a folder), kept after the run")

RESULT_LAYERS = tuple(
    name for name, layer in VECTORS.items() if layer.features != "none" and not layer.copied
)
"""The layers of ``hotspots.gpkg`` the model makes (not copied from inputs), which the report reads."""


def result_names() -> frozenset[str]:
    """The names of every file a hotspot run writes into its folder (rasters and the files beside them)."""
    return frozenset({layer.filename for layer in RASTERS.values()} | {f.filename for f in FILES})


def check_result_dir(result_dir: Path) -> Path:
    """The directory's ``hotspots.gpkg``; RenderError, saying how to make one, if it is not there."""
    hint = f"write it with `{HOTSPOTS_COMMAND}`, then pass that DIR"
    if not result_dir.is_dir():
        raise RenderError(f"result directory not found: {result_dir}", hint=hint)
    gpkg = GEOPACKAGE.path(result_dir)
    if not gpkg.is_file():
        raise RenderError(
            f"{result_dir} has no {GEOPACKAGE.filename}; it is not a hotspot result directory", hint=hint
        )
    return gpkg


def read_result_layers(gpkg: Path, names: Iterable[str]) -> dict[str, gpd.GeoDataFrame]:
    """Read the named, non-empty layers of ``hotspots.gpkg`` in EPSG:4326.

    Args:
        gpkg: Path of ``hotspots.gpkg``.
        names: The layers wanted; absent ones are left out.

    Returns:
        Layer name to frame; absent or empty layers (and rows without geometry) are left out.

    Raises:
        RenderError: The file cannot be read, or has no usable ``basin`` layer.
    """
    hint = f"write the result directory again with `{HOTSPOTS_COMMAND}`"
    try:
        present = {str(row[0]) for row in pyogrio.list_layers(gpkg)}
    except Exception as exc:  # pyogrio raises several unrelated types for unreadable files
        raise RenderError(f"cannot read {gpkg}: {exc}", hint=hint) from exc
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in names:
        if name not in present:
            continue
        try:
            frame = gpd.read_file(gpkg, layer=name, engine="pyogrio")
        except Exception as exc:
            raise RenderError(f"cannot read layer {name!r} of {gpkg}: {exc}", hint=hint) from exc
        if "geometry" not in frame.columns or len(frame) == 0:
            continue
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        if len(frame) == 0:
            continue
        frame = frame.set_crs("EPSG:4326") if frame.crs is None else frame.to_crs("EPSG:4326")
        layers[name] = frame.reset_index(drop=True)
    if "basin" not in layers:
        raise RenderError(f"{gpkg} has no basin outline (layer 'basin' is missing or empty)", hint=hint)
    return layers


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a result's file, or None when the file is absent (an optional one).

    Raises:
        RenderError: The file is there but damaged (not JSON, or not an object): a result written by
            ``hotspots`` never is, so it was changed since, and nothing should be drawn from it.
    """
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RenderError(f"{path} is damaged: {exc}", hint=RERUN_HINT) from None
    if not isinstance(loaded, dict):
        raise RenderError(f"{path} is damaged: it holds no JSON object", hint=RERUN_HINT)
    return loaded


RERUN_HINT = "run `plastic-hotspots hotspots` again to write the whole result anew"
