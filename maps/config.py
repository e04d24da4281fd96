"""The basin configuration file (YAML) that names a basin's layers, outlet and model parameters.

Example::

    name: Demo basin
    cell_size_m: 100            # optional, default from the model parameters
    crs: EPSG:32647             # optional: default is the UTM zone of the area
    area_of_interest: [99.9, 20.1, 100.2, 20.4]   # optional lon/lat box; default: the DEM's extent
    outlet: [100.05, 20.12]     # optional lon/lat: delineate the basin draining here
    layers:
      dem: dem.tif                       # required
      population: population.tif         # people per pixel
      zones: zones.gpkg                  # waste-collection service zones
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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.params import HotspotParams, UncertaintySettings

LAYER_KEYS = ("dem", "population", "zones", "rivers", "barriers", "observations", "boundaries")
TOP_KEYS = (
    "name",
    "cell_size_m",
    "crs",
    "area_of_interest",
    "outlet",
    "layers",
    "params",
    "uncertainty",
)


@dataclass(frozen=True, slots=True)
class BasinConfig:
    """A parsed basin configuration with absolute layer paths."""

    name: str
    dem: Path
    population: Path | None = None
    zones: Path | None = None
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
        """Paths of the layers used, for provenance."""
        paths = (
            self.dem,
            self.population,
            self.zones,
            self.rivers,
            self.barriers,
            self.observations,
            self.boundaries,
        )
        return [str(p) for p in paths if p is not None]


def _floats(value: Any, n: int, key: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != n:
        raise ConfigError(f"`{key}` must be a list of {n} numbers, got {value!r}")
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"`{key}` must be a list of {n} numbers, got {value!r}") from None


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
    paths = {key: (base_dir / str(value)).resolve() for key, value in layers.items() if value}
    params_raw = dict(raw.get("params") or {})
    if "cell_size_m" in raw:
        params_raw["cell_size_m"] = float(raw["cell_size_m"])
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
        dem=paths["dem"],
        population=paths.get("population"),
        zones=paths.get("zones"),
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
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_config(raw, path.parent, source=path)
