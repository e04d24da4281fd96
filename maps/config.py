"""The basin configuration file (YAML) that names a basin's layers, outlet and model parameters.

Example::

    name: Demo basin
    cell_size_m: 100            # optional, default from the model parameters
    crs: EPSG:32647             # optional: default is the UTM zone of the area
    area_of_interest: [99.9, 20.1, 100.2, 20.4]   # optional lon/lat box; default: the DEM's extent
    outlet: [100.05, 20.12]     # optional lon/lat: delineate the basin draining here
    layers:
      dem: dem.tif                       # required; or a list of tiles [a.tif, b.tif], any CRSs
      population: population.tif         # people per pixel; or {path: divisions.geojson, count: column}
      zones: zones.gpkg                  # waste-collection service zones; or {path: census.geojson,
                                         #   collection_rate: "collected / households", plastic_share: 0.07}
      rivers: rivers.gpkg                # optional mapped river network
      barriers: barriers.gpkg            # optional dams, weirs, bridges, locks, ports
      observations: observations.parquet # optional survey observations
      boundaries: districts.gpkg         # optional administrative boundaries, drawn on the map
    params:                              # optional overrides of plastic_hotspots.maps.params.HotspotParams
      land_lambda_m: 300
    uncertainty:                         # optional: parameter sets drawn over plausible ranges
      draws: 16                          # 0: none (default 16)
      seed: 20240601
      ranges: {river_mu_km: [20, 80]}    # optional overrides of maps.params.UNCERTAIN_PARAMETERS

Relative paths are read relative to the config file. Unknown keys are rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.params import HotspotParams, UncertaintySettings

LAYER_KEYS = ("dem", "population", "zones", "rivers", "barriers", "observations", "boundaries")
TOP_KEYS = ("name", "cell_size_m", "crs", "area_of_interest", "outlet", "layers", "params", "uncertainty")
ZONE_ATTRIBUTES = ("generation_kg_per_cap_day", "plastic_share", "collection_rate")
"""The waste figures a zone layer gives (each a column, a ratio of two columns, or a number)."""
FRACTION_ATTRIBUTES = ("plastic_share", "collection_rate")
"""Zone figures that are fractions in [0, 1]."""


@dataclass(frozen=True, slots=True)
class PopulationPolygons:
    """Population given as polygons (e.g. census divisions) with a count of people in each.

    Attributes:
        path: The polygon layer.
        count: The column holding each polygon's number of people.
    """

    path: Path
    count: str


@dataclass(frozen=True, slots=True)
class ZoneValue:
    """How a zone figure is read: a number for every zone, a column, or the ratio of two columns."""

    number: float | None = None
    column: str | None = None
    denominator: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.number:g}"
        return f"{self.column} / {self.denominator}" if self.denominator else str(self.column)

    @classmethod
    def parse(cls, value: Any, key: str) -> ZoneValue:
        """A number, ``"column"`` or ``"column_a / column_b"``.

        Raises:
            ConfigError: Anything else (a list, a mapping, an empty string, a ratio of other than two
                names, a fraction outside [0, 1]).
        """
        expected = 'a number, a column name, or a ratio of two columns "col_a / col_b"'
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            low_ok = number >= 0 if key not in FRACTION_ATTRIBUTES else 0 <= number <= 1
            if not (low_ok and math.isfinite(number)):
                bound = "in [0, 1]" if key in FRACTION_ATTRIBUTES else ">= 0"
                raise ConfigError(f"`layers.zones.{key}` must be {bound}, got {value!r}")
            return cls(number=number)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"`layers.zones.{key}` must be {expected}, got {value!r}")
        parts = [part.strip() for part in value.split("/")]
        if len(parts) == 1:
            return cls(column=parts[0])
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"`layers.zones.{key}` must be {expected}, got {value!r}")
        return cls(column=parts[0], denominator=parts[1])


@dataclass(frozen=True, slots=True)
class ZoneTable:
    """Zones from any polygon layer, each waste figure read as its :class:`ZoneValue` says.

    Attributes:
        path: The polygon layer.
        attributes: ``(figure, how it is read)`` for the figures given (of :data:`ZONE_ATTRIBUTES`);
            the others take the defaults.
    """

    path: Path
    attributes: tuple[tuple[str, ZoneValue], ...] = ()

    def get(self, name: str) -> ZoneValue | None:
        """How the figure ``name`` is read, or None where the defaults apply."""
        return dict(self.attributes).get(name)


DemSource = Path | tuple[Path, ...]
"""A DEM: one raster, or tiles mosaicked onto the grid (the first listed wins where they overlap)."""
PopulationSource = Path | PopulationPolygons
"""Population: a people-per-pixel raster, or polygons with a count column."""
ZoneSource = Path | ZoneTable
"""Service zones: a layer with the zone columns, or any polygon layer with a :class:`ZoneTable`."""


def layer_paths(layer: DemSource | PopulationSource | ZoneSource | None) -> tuple[Path, ...]:
    """The files a layer reads (every tile of a DEM)."""
    if layer is None:
        return ()
    if isinstance(layer, tuple):
        return layer
    if isinstance(layer, PopulationPolygons | ZoneTable):
        return (layer.path,)
    return (layer,)


@dataclass(frozen=True, slots=True)
class BasinConfig:
    """A parsed basin configuration with absolute layer paths."""

    name: str
    dem: DemSource
    population: PopulationSource | None = None
    zones: ZoneSource | None = None
    rivers: Path | None = None
    barriers: Path | None = None
    observations: Path | None = None
    boundaries: Path | None = None
    crs: str | None = None
    area_of_interest: tuple[float, float, float, float] | None = None
    outlet: tuple[float, float] | None = None
    params: HotspotParams = field(default_factory=HotspotParams)
    source: Path | None = None
    uncertainty: UncertaintySettings = field(default_factory=UncertaintySettings)

    def inputs(self) -> list[str]:
        """Paths of the layers used (every DEM tile), for provenance."""
        layers = (
            self.dem,
            self.population,
            self.zones,
            self.rivers,
            self.barriers,
            self.observations,
            self.boundaries,
        )
        return [str(p) for layer in layers for p in layer_paths(layer)]


def _floats(value: Any, n: int, key: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != n:
        raise ConfigError(f"`{key}` must be a list of {n} numbers, got {value!r}")
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"`{key}` must be a list of {n} numbers, got {value!r}") from None


def _path(value: Any, base_dir: Path, key: str) -> Path:
    """A file path (relative to ``base_dir``) from a string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{key}` must be a file path, got {value!r}")
    return (base_dir / value).resolve()


def _dem(value: Any, base_dir: Path) -> DemSource:
    """``dem: file.tif`` or ``dem: [a.tif, b.tif, ...]``."""
    if isinstance(value, list):
        if not value:
            raise ConfigError("`layers.dem` is an empty list", hint="list the DEM's tiles, or give one file")
        return tuple(_path(item, base_dir, "layers.dem[]") for item in value)
    if not isinstance(value, str):
        raise ConfigError(
            f"`layers.dem` must be a file path or a list of tile paths, got {value!r}",
            hint="e.g. `dem: dem.tif` or `dem: [n07_e079.tif, n07_e080.tif]`",
        )
    return _path(value, base_dir, "layers.dem")


def _mapping(value: dict[Any, Any], key: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """Refuse a layer mapping with missing or unknown keys."""
    missing = [k for k in required if k not in value]
    unknown = sorted(str(k) for k in value if k not in required + optional)
    expected = f"expected the key(s) {', '.join(required)}" + (
        f" and optionally {', '.join(optional)}" if optional else ""
    )
    if missing:
        raise ConfigError(f"`{key}` has no `{missing[0]}`: {expected}")
    if unknown:
        raise ConfigError(f"unknown key(s) in `{key}`: {', '.join(unknown)}; {expected}")


def _population(value: Any, base_dir: Path) -> PopulationSource | None:
    """``population: people.tif`` or ``population: {path: divisions.geojson, count: column}``."""
    hint = "give a people-per-pixel raster, or polygons: `population: {path: FILE, count: COLUMN}`"
    if value is None:
        return None
    if isinstance(value, dict):
        _mapping(value, "layers.population", ("path", "count"), ())
        count = value["count"]
        if not isinstance(count, str) or not count.strip():
            raise ConfigError(f"`layers.population.count` must be a column name, got {count!r}", hint=hint)
        return PopulationPolygons(_path(value["path"], base_dir, "layers.population.path"), count.strip())
    if not isinstance(value, str):
        raise ConfigError(
            f"`layers.population` must be a file path or a mapping with path and count, got {value!r}",
            hint=hint,
        )
    return _path(value, base_dir, "layers.population")


def _zones(value: Any, base_dir: Path) -> ZoneSource | None:
    """``zones: zones.gpkg`` or ``zones: {path: FILE, <figure>: number | column | "a / b", ...}``."""
    if value is None:
        return None
    if isinstance(value, dict):
        _mapping(value, "layers.zones", ("path",), ZONE_ATTRIBUTES)
        attributes = tuple(
            (name, ZoneValue.parse(value[name], name)) for name in ZONE_ATTRIBUTES if name in value
        )
        return ZoneTable(_path(value["path"], base_dir, "layers.zones.path"), attributes)
    if not isinstance(value, str):
        raise ConfigError(
            f"`layers.zones` must be a file path or a mapping with path and zone figures, got {value!r}",
            hint=f"e.g. `zones: {{path: census.geojson, collection_rate: collected / households}}`; "
            f"figures: {', '.join(ZONE_ATTRIBUTES)}",
        )
    return _path(value, base_dir, "layers.zones")


def parse_config(raw: Any, base_dir: Path, source: Path | None = None) -> BasinConfig:
    """Validate a config mapping; relative layer paths are resolved against ``base_dir``."""
    if not isinstance(raw, dict):
        raise ConfigError(
            "a basin config must be a mapping of keys to values", hint="see docs/hotspot-model.md"
        )
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(unknown)}", hint=f"known keys: {', '.join(TOP_KEYS)}"
        )
    layers = raw.get("layers") or {}
    if not isinstance(layers, dict):
        raise ConfigError("`layers` must be a mapping of layer names to file paths")
    bad = sorted(set(layers) - set(LAYER_KEYS))
    if bad:
        raise ConfigError(
            f"unknown layer(s): {', '.join(bad)}", hint=f"known layers: {', '.join(LAYER_KEYS)}"
        )
    if "dem" not in layers:
        raise ConfigError("the config names no `dem` layer", hint="add `layers: {dem: path/to/dem.tif}`")
    paths = {
        key: _path(value, base_dir, f"layers.{key}")
        for key, value in layers.items()
        if value and key not in ("dem", "population", "zones")
    }
    given = raw.get("params") or {}
    if not isinstance(given, dict):
        raise ConfigError(
            f"`params` must be a mapping of parameter names to values, got {given!r}",
            hint="write e.g. `params: {land_lambda_m: 400, top_n: 10}`",
        )
    params_raw = dict(given)
    if "cell_size_m" in raw:
        params_raw["cell_size_m"] = raw["cell_size_m"]  # checked with the parameters: a number > 0
    params = HotspotParams.from_mapping(params_raw)
    aoi = raw.get("area_of_interest")
    outlet = raw.get("outlet")
    if aoi is not None:
        west, south, east, north = _floats(aoi, 4, "area_of_interest")
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ConfigError(
                f"the area of interest {list(aoi)} is empty or not in lon/lat degrees",
                hint="give [west, south, east, north] in degrees with west < east and south < north",
            )
    if outlet is not None:
        lon, lat = _floats(outlet, 2, "outlet")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ConfigError(f"the outlet {list(outlet)} is not a lon/lat point", hint="give [lon, lat]")
    return BasinConfig(
        name=str(raw.get("name") or "basin"),
        dem=_dem(layers["dem"], base_dir),
        population=_population(layers.get("population"), base_dir),
        zones=_zones(layers.get("zones"), base_dir),
        rivers=paths.get("rivers"),
        barriers=paths.get("barriers"),
        observations=paths.get("observations"),
        boundaries=paths.get("boundaries"),
        crs=str(raw["crs"]) if raw.get("crs") else None,
        area_of_interest=_floats(aoi, 4, "area_of_interest") if aoi is not None else None,  # type: ignore[arg-type]
        outlet=_floats(outlet, 2, "outlet") if outlet is not None else None,  # type: ignore[arg-type]
        params=params,
        source=source,
        uncertainty=UncertaintySettings.from_mapping(raw.get("uncertainty")),
    )


CONFIG_HINT = "correct that value in the config; docs/hotspot-model.md gives each key with its unit and range"
"""How to fix a config value whose check has no more particular hint."""


def load_config(path: Path) -> BasinConfig:
    """Read and validate a basin config YAML file."""
    if not path.is_file():
        raise ConfigError(
            f"basin config not found: {path}",
            hint="write one (docs/hotspot-model.md), or run `plastic-hotspots demo --out DIR` for an example",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {exc}",
            hint="fix the line shown (an unclosed bracket or quote, or a tab for indentation, is usual)",
        ) from exc
    try:
        return parse_config(raw, path.parent, source=path)
    except ConfigError as exc:
        # The file is named, and every message says how to fix it (where the check gave no hint of its own).
        raise ConfigError(
            f"the basin config {path}: {exc.message}",
            hint=exc.hint or CONFIG_HINT,
        ) from exc
