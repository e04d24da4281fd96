"""Every parameter of the hotspot model, typed and documented, in one place.

The model (see ``docs/hotspot-model.md``):

* Source: ``L_src = population x generation x plastic_share x (1 - collection_rate)`` [kg/yr].
* Reaching a waterway: ``P_land = prod exp(-step / lambda)`` along the D8 flow path to the first
  river cell, with ``lambda = land_lambda_m x (1 + land_lambda_slope_gain x slope)``: steep ground
  carries litter further.
* Along rivers: each river cell passes on ``exp(-step / mu)`` of its load, with ``mu`` growing with
  stream order, times a pass factor at barriers and in low-slope reaches. What it does not pass on
  is retained there: that is the accumulation strength.

The defaults are plausible starting values, not fitted constants: calibrate them against observed
litter density where observations exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from plastic_hotspots.errors import ConfigError

GI_FDR = 0.05
"""False-discovery rate of the Gi* hot and cold spots (Benjamini-Hochberg over the cells tested)."""


@dataclass(frozen=True, slots=True)
class ZoneDefaults:
    """Waste figures used where a cell lies in no service zone, or a zone leaves a figure out.

    Attributes:
        generation_kg_per_cap_day: Municipal solid waste generated per person per day. 0.69 kg is
            the East Asia and Pacific average reported by the World Bank's "What a Waste 2.0".
        plastic_share: Mass fraction of plastic in that waste (about 0.12 worldwide).
        collection_rate: Fraction of the waste that is collected and managed. Rural areas without
            a service zone get a low default.
    """

    generation_kg_per_cap_day: float = 0.69
    plastic_share: float = 0.12
    collection_rate: float = 0.2


@dataclass(frozen=True, slots=True)
class BarrierPass:
    """Fraction of the floating plastic load that passes each kind of barrier (the rest is retained)."""

    dam: float = 0.15
    weir: float = 0.5
    bridge: float = 0.85
    lock: float = 0.6
    port: float = 0.7

    def for_kind(self, kind: str) -> float:
        """The pass factor of a barrier kind; raises ConfigError for an unknown kind."""
        try:
            value: float = getattr(self, kind)
        except AttributeError:
            known = ", ".join(f.name for f in fields(self))
            raise ConfigError(f"unknown barrier kind {kind!r}", hint=f"use one of: {known}") from None
        return value


@dataclass(frozen=True, slots=True)
class HotspotParams:
    """Parameters of the hotspot model.

    Attributes:
        cell_size_m: Grid cell edge in metres.
        river_threshold_km2: Upstream area above which a cell is a river when no river network
            is given (and a stream is burned only where the network says so).
        stream_burn_m: Depth by which a given river network is burned into the DEM before
            conditioning, so that D8 follows the mapped rivers.
        land_lambda_m: Length scale of overland transport on flat ground, metres.
        land_lambda_slope_gain: How much ``lambda`` grows per unit slope (rise/run).
        river_mu_km: In-river length scale for a first-order stream, km; doubled per order above 1.
        low_slope: River slope (rise/run) under which a reach is a low-slope trap.
        low_slope_pass: Fraction of the load that passes one low-slope trap cell.
        barrier_pass: Pass factors per barrier kind.
        zone_defaults: Waste figures where no zone says otherwise.
        top_n: How many hotspots of each kind are ranked.
        hotspot_separation_m: Two ranked hotspots of one kind are at least this far apart.
        min_observations: Cells with fewer observations are "not surveyed", never "clean".
        prior_strength_obs: Least weight (in observations) of the area-wide mean rate when shrinking
            a cell's observed rate (empirical-Bayes gamma-Poisson); the weight itself is estimated
            from the spread between cells.
        interval: Central probability of the reported rate interval.
        observed_source_weight: How strongly an observed excess of litter over the modelled
            expectation is added as an extra source (0 ignores observations).
        sea_level_m: The sea's level in the DEM, metres (0 in SRTM, where the sea is 0 m, not
            nodata). Flat open water at the grid's edge (at or below this level, or lower than all
            land beside it) is made nodata before routing, so that coasts drain into the sea and
            their load is exported (:mod:`plastic_hotspots.maps.science.openwater` gives the rule).
            ``null`` (or ``false``) in a config turns the rule off: the whole DEM is land.
    """

    cell_size_m: float = 100.0
    river_threshold_km2: float = 2.0
    stream_burn_m: float = 5.0
    land_lambda_m: float = 400.0
    land_lambda_slope_gain: float = 8.0
    river_mu_km: float = 40.0
    low_slope: float = 0.0005
    low_slope_pass: float = 0.97
    barrier_pass: BarrierPass = field(default_factory=BarrierPass)
    zone_defaults: ZoneDefaults = field(default_factory=ZoneDefaults)
    top_n: int = 10
    hotspot_separation_m: float = 500.0
    min_observations: int = 3
    prior_strength_obs: float = 5.0
    interval: float = 0.9
    observed_source_weight: float = 1.0
    sea_level_m: float | None = 0.0

    def __post_init__(self) -> None:
        positive = (
            "cell_size_m",
            "river_threshold_km2",
            "land_lambda_m",
            "river_mu_km",
            "prior_strength_obs",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("low_slope_pass", "interval"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"{name} must lie in (0, 1], got {value!r}")
        if self.top_n < 1:
            raise ConfigError(f"top_n must be >= 1, got {self.top_n!r}")
        sea = self.sea_level_m
        if sea is not None and (
            isinstance(sea, bool) or not isinstance(sea, int | float) or not -500 < sea < 9000
        ):
            raise ConfigError(
                f"sea_level_m must be a level in metres or null, got {sea!r}",
                hint="give the sea's level in the DEM (0 for SRTM), or null to treat no water as sea",
            )

    def flat(self) -> dict[str, float | int | None]:
        """All parameters as one flat mapping (nested groups as ``group.name``), for provenance."""
        out: dict[str, float | int | None] = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    out[f"{key}.{sub}"] = subvalue
            else:
                out[key] = value
        return out

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> HotspotParams:
        """Build parameters from a config mapping; unknown keys are rejected with their names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"unknown model parameter(s): {', '.join(unknown)}",
                hint=f"known parameters: {', '.join(sorted(known))}",
            )
        values = dict(raw)
        if values.get("sea_level_m") is False:
            values["sea_level_m"] = None  # ``false`` in a config: no sea
        for name, group in (("barrier_pass", BarrierPass), ("zone_defaults", ZoneDefaults)):
            if name in values:
                sub = values[name]
                allowed = {f.name for f in fields(group)}
                bad = sorted(set(sub) - allowed)
                if bad:
                    raise ConfigError(
                        f"unknown {name} key(s): {', '.join(bad)}",
                        hint=f"known: {', '.join(sorted(allowed))}",
                    )
                values[name] = group(**sub)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad model parameters: {exc}") from exc
