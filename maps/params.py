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

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from plastic_hotspots.errors import ConfigError, ConfigWarning

GI_FDR = 0.05
"""False-discovery rate of the Gi* hot and cold spots (Benjamini-Hochberg over the cells tested)."""


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    whole: bool = False,
    unit: str = "",
) -> None:
    """Raise a ConfigError naming ``name`` unless ``value`` is a finite number in the range given.

    ``low``/``high`` are inclusive (``low_open``: ``low`` itself excluded); ``whole`` asks for an integer.
    The message says what was expected and what came, e.g. "barrier_pass.dam must be a number in [0, 1]
    (a fraction), got -3".
    """
    kind = "a whole number" if whole else "a number"
    if low is not None and high is not None:
        expected = f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}]"
    elif low is not None:
        expected = f"{kind} {'>' if low_open else '>='} {low:g}"
    else:
        expected = kind
    if unit:
        expected += f" ({unit})"
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and whole:
        ok = float(value).is_integer()
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


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

    def __post_init__(self) -> None:
        check_number(
            "zone_defaults.generation_kg_per_cap_day", self.generation_kg_per_cap_day, low=0, unit="kg"
        )
        check_number("zone_defaults.plastic_share", self.plastic_share, low=0, high=1, unit="a fraction")
        check_number("zone_defaults.collection_rate", self.collection_rate, low=0, high=1, unit="a fraction")


@dataclass(frozen=True, slots=True)
class BarrierPass:
    """Fraction of the floating plastic load that passes each kind of barrier (the rest is retained)."""

    dam: float = 0.15
    weir: float = 0.5
    bridge: float = 0.85
    lock: float = 0.6
    port: float = 0.7

    def __post_init__(self) -> None:
        for kind in fields(self):
            check_number(
                f"barrier_pass.{kind.name}", getattr(self, kind.name), low=0, high=1, unit="a fraction"
            )

    def for_kind(self, kind: str) -> float:
        """The pass factor of a barrier kind; raises ConfigError for an unknown kind."""
        try:
            value: float = getattr(self, kind)
        except AttributeError:
            known = ", ".join(f.name for f in fields(self))
            raise ConfigError(f"unknown barrier kind {kind!r}", hint=f"use one of: {known}") from None
        return value


# Parameters that once had a meaning and are accepted still, with a warning, so that old configs run.
RETIRED = {
    "prior_strength_obs": "the weight of the area-wide rate in the observed density is chosen by "
    "cross-validation on the survey itself (see `density --validate`); remove the key",
}


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
    interval: float = 0.9
    observed_source_weight: float = 1.0
    sea_level_m: float | None = 0.0

    def __post_init__(self) -> None:
        positive = {
            "cell_size_m": "metres",
            "river_threshold_km2": "km²",
            "land_lambda_m": "metres",
            "river_mu_km": "km",
        }
        for name, unit in positive.items():
            check_number(name, getattr(self, name), low=0, low_open=True, unit=unit)
        not_negative = {
            "stream_burn_m": "metres",
            "land_lambda_slope_gain": "per unit slope",
            "low_slope": "rise/run",
            "hotspot_separation_m": "metres",
            "observed_source_weight": "a weight",
        }
        for name, unit in not_negative.items():
            check_number(name, getattr(self, name), low=0, unit=unit)
        for name in ("low_slope_pass", "interval"):
            check_number(name, getattr(self, name), low=0, high=1, low_open=True, unit="a fraction")
        check_number("top_n", self.top_n, low=1, whole=True)
        check_number("min_observations", self.min_observations, low=1, whole=True, unit="observations")
        for name, group in (("barrier_pass", BarrierPass), ("zone_defaults", ZoneDefaults)):
            if not isinstance(getattr(self, name), group):
                raise ConfigError(f"{name} must be a mapping of its figures, got {getattr(self, name)!r}")
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
        if not isinstance(raw, dict):
            raise ConfigError(
                f"`params` must be a mapping of parameter names to values, got {raw!r}",
                hint="write e.g. `params: {land_lambda_m: 400, top_n: 10}`",
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known - set(RETIRED))
        if unknown:
            raise ConfigError(
                f"unknown model parameter(s): {', '.join(unknown)}",
                hint=f"known parameters: {', '.join(sorted(known))}",
            )
        values = dict(raw)
        for name, instead in RETIRED.items():
            if name in values:
                del values[name]
                warnings.warn(
                    f"`params: {name}` has no effect and is ignored: {instead}", ConfigWarning, stacklevel=2
                )
        if values.get("sea_level_m") is False:
            values["sea_level_m"] = None  # ``false`` in a config: no sea
        for name, group in (("barrier_pass", BarrierPass), ("zone_defaults", ZoneDefaults)):
            if name in values:
                sub = values[name]
                if not isinstance(sub, dict):
                    raise ConfigError(f"`params: {name}` must be a mapping, got {sub!r}")
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


RangeScale = Literal["linear", "log"]


@dataclass(frozen=True, slots=True)
class ParameterRange:
    """The plausible range of one uncertain parameter of the model.

    Attributes:
        name: What it sets (see :data:`UNCERTAIN_PARAMETERS`): a parameter of :class:`HotspotParams`
            (``land_lambda_m``, ``barrier_pass.dam``), or a multiplier or shift applied to one
            (``river_threshold_factor``, ``generation_factor``, ``collection_shift``).
        low: Lowest plausible value.
        high: Highest plausible value (``low == high`` holds the parameter fixed).
        scale: How draws spread over the range: ``linear`` (uniform) or ``log`` (uniform in log).
        doc: One line on why this range: a published anchor, or that it is a guess.
    """

    name: str
    low: float
    high: float
    scale: RangeScale = "linear"
    doc: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ConfigError(
                f"the range of {self.name} must be two finite numbers, low <= high; got "
                f"[{self.low!r}, {self.high!r}]"
            )
        if self.scale not in ("linear", "log"):
            raise ConfigError(f"the scale of {self.name}'s range must be linear or log, got {self.scale!r}")
        if self.scale == "log" and self.low <= 0:
            raise ConfigError(
                f"a log range must be positive: {self.name} has low {self.low!r}",
                hint="give a positive low end, or use scale linear",
            )

    def at(self, quantile: float) -> float:
        """The value at ``quantile`` (0: low, 1: high) of the range, uniform on its scale."""
        if self.scale == "log":
            return float(math.exp(math.log(self.low) + quantile * (math.log(self.high) - math.log(self.low))))
        return self.low + quantile * (self.high - self.low)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range (ends included)."""
        return self.low <= value <= self.high

    def containing(self, value: float) -> ParameterRange:
        """This range, widened (if needed) to take in ``value``: a configured value outside it."""
        if self.contains(value):
            return self
        return ParameterRange(self.name, min(self.low, value), max(self.high, value), self.scale, self.doc)


UNCERTAIN_PARAMETERS: tuple[ParameterRange, ...] = (
    ParameterRange(
        "land_lambda_m",
        100.0,
        1600.0,
        "log",
        "guess: a factor 4 either side of 400 m; the published global models' land constants were not "
        "verified (SCIENCE.md)",
    ),
    ParameterRange(
        "land_lambda_slope_gain",
        0.0,
        16.0,
        "linear",
        "guess: from no effect of slope to twice the default",
    ),
    ParameterRange(
        "river_mu_km",
        10.0,
        160.0,
        "log",
        "guess: a factor 4 either side of 40 km; uncalibrated until checked against river flux (SCIENCE.md)",
    ),
    ParameterRange(
        "river_threshold_factor",
        0.5,
        2.0,
        "log",
        "guess: half to twice the upstream area from which a cell is a river (river_threshold_km2)",
    ),
    ParameterRange(
        "low_slope_pass",
        0.9,
        1.0,
        "linear",
        "guess: a low-slope reach cell holds 0 to 10 % of its load",
    ),
    ParameterRange("barrier_pass.dam", 0.05, 0.4, "linear", "guess: dams hold most floating plastic"),
    ParameterRange("barrier_pass.weir", 0.3, 0.8, "linear", "guess: weirs hold some, spilling in floods"),
    ParameterRange("barrier_pass.bridge", 0.7, 1.0, "linear", "guess: bridges hold little, at piers"),
    ParameterRange("barrier_pass.lock", 0.4, 0.8, "linear", "guess: between a weir and a port"),
    ParameterRange("barrier_pass.port", 0.5, 0.9, "linear", "guess: ports and piers hold some"),
    ParameterRange(
        "generation_factor",
        0.7,
        1.4,
        "log",
        "multiplier on waste generated per person; the defaults are regional averages (World Bank "
        "'What a Waste 2.0'), a place's own figure off by this much is a guess",
    ),
    ParameterRange(
        "plastic_share_factor",
        0.67,
        1.5,
        "log",
        "multiplier on the plastic share (about 12 % worldwide, 'What a Waste 2.0'): 8 to 18 %, a guess",
    ),
    ParameterRange(
        "collection_shift",
        -0.1,
        0.1,
        "linear",
        "added to every collection rate, clipped to [0, 1]: a guess at how far reported rates are off",
    ),
)
"""The uncertain parameters of the model, each with the range its draws span and why (docs: Uncertainty)."""

MULTIPLIERS = {"river_threshold_factor": 1.0, "generation_factor": 1.0, "plastic_share_factor": 1.0}
"""The parameters that multiply a figure of the model, at their neutral value."""
SHIFTS = {"collection_shift": 0.0}
"""The parameters added to a figure of the model, at their neutral value."""


def point_value(params: HotspotParams, name: str) -> float:
    """The value of an uncertain parameter in a run with ``params`` (1 for multipliers, 0 for shifts).

    Raises:
        ConfigError: ``name`` is no uncertain parameter.
    """
    if name in MULTIPLIERS:
        return MULTIPLIERS[name]
    if name in SHIFTS:
        return SHIFTS[name]
    if name.startswith("barrier_pass."):
        return params.barrier_pass.for_kind(name.split(".", 1)[1])
    if name in ("land_lambda_m", "land_lambda_slope_gain", "river_mu_km", "low_slope_pass"):
        return float(getattr(params, name))
    known = ", ".join(r.name for r in UNCERTAIN_PARAMETERS)
    raise ConfigError(f"unknown uncertain parameter {name!r}", hint=f"known: {known}")


@dataclass(frozen=True, slots=True)
class UncertaintySettings:
    """How many parameter sets a run draws, from which seed, over which ranges.

    Attributes:
        draws: Parameter sets drawn by Latin hypercube sampling (0: no draws, no sensitivity).
        seed: Seed of the draws: the same seed gives the same draws.
        ranges: The range of each uncertain parameter (:data:`UNCERTAIN_PARAMETERS` unless
            the config's ``uncertainty: ranges:`` overrides some).
    """

    draws: int = 16
    seed: int = 20240601
    ranges: tuple[ParameterRange, ...] = UNCERTAIN_PARAMETERS

    def __post_init__(self) -> None:
        if isinstance(self.draws, bool) or not isinstance(self.draws, int) or self.draws < 0:
            raise ConfigError(f"uncertainty draws must be a whole number >= 0, got {self.draws!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"the uncertainty seed must be a whole number >= 0, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, raw: Any) -> UncertaintySettings:
        """Settings from the config's ``uncertainty:`` mapping (``draws``, ``seed``, ``ranges``).

        ``ranges`` maps a parameter's name to ``[low, high]``; the others keep their ranges.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(
                "`uncertainty` must be a mapping", hint="e.g. uncertainty: {draws: 16, seed: 1}"
            )
        unknown = sorted(set(raw) - {"draws", "seed", "ranges"})
        if unknown:
            raise ConfigError(
                f"unknown uncertainty key(s): {', '.join(unknown)}", hint="known: draws, seed, ranges"
            )
        base = cls()
        ranges = {r.name: r for r in base.ranges}
        given = raw.get("ranges") or {}
        if not isinstance(given, dict):
            raise ConfigError("`uncertainty: ranges` must map parameter names to [low, high]")
        for name, ends in given.items():
            if name not in ranges:
                raise ConfigError(f"unknown uncertain parameter {name!r}", hint=f"known: {', '.join(ranges)}")
            if not isinstance(ends, list | tuple) or len(ends) != 2:
                raise ConfigError(f"the range of {name} must be [low, high], got {ends!r}")
            old = ranges[name]
            try:
                ranges[name] = ParameterRange(name, float(ends[0]), float(ends[1]), old.scale, old.doc)
            except (TypeError, ValueError):
                raise ConfigError(f"the range of {name} must be two numbers, got {ends!r}") from None
        draws, seed = raw.get("draws", base.draws), raw.get("seed", base.seed)
        return cls(draws=draws, seed=seed, ranges=tuple(ranges.values()))

    def around(self, params: HotspotParams) -> tuple[ParameterRange, ...]:
        """The ranges, each widened to take in the run's own value of its parameter."""
        return tuple(r.containing(point_value(params, r.name)) for r in self.ranges)
