"""Parameter uncertainty, whatever the run mode: draws, what a draw changes, and the summary of the draws.

Every routing constant of the model is a documented guess (SCIENCE.md): a run therefore draws parameter
sets over the plausible ranges of :data:`plastic_hotspots.maps.params.UNCERTAIN_PARAMETERS` (Latin
hypercube, seeded), reruns the parts of the model each set changes, and reports the basin totals with
their 5-95 % range, how stable each hotspot's rank is, and a one-at-a-time sensitivity of each
parameter. This module holds the parts that need no grid: the draws, the parameters of one draw, the
mismanaged plastic of a draw from the zones' figures, matching a hotspot across draws, and the
``uncertainty.json`` document. The whole-grid run evaluates the draws
(:mod:`plastic_hotspots.maps.wholegrid.uncertainty`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import qmc

from plastic_hotspots.maps.params import (
    MULTIPLIERS,
    SHIFTS,
    BarrierPass,
    HotspotParams,
    ParameterRange,
    UncertaintySettings,
    point_value,
)
from plastic_hotspots.maps.science.model import DAYS_PER_YEAR

FloatArray = npt.NDArray[np.float64]
Cell = tuple[int, int]

TOTALS = ("mismanaged_kg_yr", "into_rivers_kg_yr", "retained_kg_yr", "exported_kg_yr")
"""The basin totals reported with ranges: mismanaged on land, entering rivers, retained, exported."""
HOTSPOT_KINDS = ("leakage", "accumulation")
PERCENTILES = (5.0, 50.0, 95.0)
UNSTABLE_SPAN = 3
"""A hotspot is unstable when its rank's 5-95 % range spans more than this many places ..."""
UNSTABLE_OUT_SHARE = 0.1
"""... or it falls out of the ranked ``top_n`` in more than this share of the draws."""
LARGE_MODE_UNCERTAINTY_NOTE = (
    "the large (tiled) mode draws no parameter sets yet: each draw would rerun the tiled overland "
    "transport, river routing and ranking over every tile, multiplying a run that already takes long "
    "by the number of draws; for ranges, run the whole-grid mode (on a coarser grid if needed)"
)
"""Why a large-mode run's ``uncertainty.json`` holds no draws."""


@dataclass(frozen=True, slots=True)
class SourceChange:
    """What a draw does to the mismanaged plastic: multipliers and a shift of the zones' figures."""

    generation_factor: float = 1.0
    plastic_share_factor: float = 1.0
    collection_shift: float = 0.0

    @property
    def neutral(self) -> bool:
        """Whether it changes nothing."""
        return self == SourceChange()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one parameter set gives: the basin totals and the ranked hotspot cells of each kind."""

    totals: Mapping[str, float]
    peaks: Mapping[str, Sequence[Cell]]


def draw_values(ranges: Sequence[ParameterRange], draws: int, seed: int) -> list[dict[str, float]]:
    """``draws`` parameter sets over ``ranges`` by Latin hypercube sampling, seeded (same seed, same sets)."""
    if draws <= 0 or not ranges:
        return []
    sampler = qmc.LatinHypercube(d=len(ranges), rng=np.random.default_rng(seed))
    unit = sampler.random(draws)
    return [{r.name: r.at(float(u)) for r, u in zip(ranges, row, strict=True)} for row in unit]


def apply_values(params: HotspotParams, values: Mapping[str, float]) -> tuple[HotspotParams, SourceChange]:
    """The model parameters and the source change of a draw (names not in ``values`` keep their value)."""
    passes = {f.name: getattr(params.barrier_pass, f.name) for f in dataclasses.fields(BarrierPass)}
    plain: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("barrier_pass."):
            passes[name.split(".", 1)[1]] = value
        elif name not in MULTIPLIERS and name not in SHIFTS:
            point_value(params, name)  # raises for an unknown name
            plain[name] = value
    threshold = params.river_threshold_km2 * values.get("river_threshold_factor", 1.0)
    drawn = dataclasses.replace(
        params, **plain, river_threshold_km2=threshold, barrier_pass=BarrierPass(**passes)
    )
    change = SourceChange(
        generation_factor=values.get("generation_factor", 1.0),
        plastic_share_factor=values.get("plastic_share_factor", 1.0),
        collection_shift=values.get("collection_shift", 0.0),
    )
    return drawn, change


def mismanaged_with(
    population: FloatArray,
    zone_id: npt.NDArray[np.integer],
    by_zone: Mapping[str, FloatArray],
    change: SourceChange,
) -> FloatArray:
    """Mismanaged plastic (kg/yr per cell) with a draw's change of the zones' figures.

    ``population x generation x g x 365.25 x plastic_share x s x (1 - clip(collection + shift, 0, 1))``,
    with ``by_zone`` each figure per zone number (entry 0: the default) as the zones were rasterised.
    """
    collected = np.clip(by_zone["collection_rate"] + change.collection_shift, 0.0, 1.0)
    per_person = (
        by_zone["generation_kg_per_cap_day"]
        * change.generation_factor
        * DAYS_PER_YEAR
        * by_zone["plastic_share"]
        * change.plastic_share_factor
        * (1.0 - collected)
    )
    out: FloatArray = population * per_person[zone_id]
    return out


def rank_in(cell: Cell, peaks: Sequence[Cell], *, cell_size: float, separation_m: float, top_n: int) -> int:
    """The rank of the draw's hotspot nearest ``cell`` within ``separation_m``; ``top_n + 1`` if none."""
    best, best_d = top_n + 1, np.inf
    for rank, (r, c) in enumerate(peaks, start=1):
        d = float(np.hypot(r - cell[0], c - cell[1])) * cell_size
        if d <= separation_m and d < best_d:
            best, best_d = rank, d
    return best


def _spread(point: float, values: Sequence[float]) -> dict[str, Any]:
    """Point value and the 5th, 50th and 95th percentiles of ``values``, widened to take in the point."""
    p5, p50, p95 = (float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES))
    widened = not p5 <= point <= p95
    return {"value": point, "p5": min(p5, point), "p50": p50, "p95": max(p95, point), "widened": widened}


def _hotspot_spread(kind: str, rank: int, ranks: Sequence[int], top_n: int) -> dict[str, Any]:
    """A hotspot's rank across the draws: 5-95 % range (widened to its own rank), extremes, stability."""
    values = np.asarray(ranks, dtype=np.int64)
    low = min(int(np.percentile(values, 5.0, method="lower")), rank)
    high = max(int(np.percentile(values, 95.0, method="higher")), rank)
    out_share = float(np.mean(values > top_n))
    return {
        "kind": kind,
        "rank": rank,
        "rank_p5": low,
        "rank_p95": high,
        "rank_min": int(min(values.min(), rank)),
        "rank_max": int(max(values.max(), rank)),
        "out_of_top_share": out_share,
        "unstable": bool(high - low > UNSTABLE_SPAN or out_share > UNSTABLE_OUT_SHARE),
    }


def _ranks(point: Outcome, other: Outcome, params: HotspotParams, cell_size: float) -> dict[str, list[int]]:
    """Each point hotspot's rank in ``other``, by kind, in the point's rank order."""
    return {
        kind: [
            rank_in(
                cell,
                other.peaks.get(kind, ()),
                cell_size=cell_size,
                separation_m=params.hotspot_separation_m,
                top_n=params.top_n,
            )
            for cell in point.peaks.get(kind, ())
        ]
        for kind in HOTSPOT_KINDS
    }


def _moves(row: Mapping[str, Any]) -> tuple[float, ...]:
    """Sort key of a sensitivity row: how far it moves the total entering rivers, then the export."""
    totals = row["totals"]
    return tuple(
        -abs(totals[name][1] - totals[name][0])
        for name in ("into_rivers_kg_yr", "exported_kg_yr", "retained_kg_yr")
    )


def parameters_document(ranges: Sequence[ParameterRange], params: HotspotParams) -> dict[str, Any]:
    """The ranges as written into ``uncertainty.json``: low, high, scale, the run's value, why."""
    return {
        r.name: {
            "low": r.low,
            "high": r.high,
            "scale": r.scale,
            "point": point_value(params, r.name),
            "doc": r.doc,
        }
        for r in ranges
    }


def uncertainty_document(
    settings: UncertaintySettings,
    ranges: Sequence[ParameterRange],
    params: HotspotParams,
    cell_size: float,
    point: Outcome,
    draws: Sequence[Outcome],
    ends: Sequence[tuple[ParameterRange, Outcome, Outcome]],
) -> dict[str, Any]:
    """The ``uncertainty.json`` document of a run.

    Args:
        settings: The draws and seed.
        ranges: The ranges drawn from (each containing the run's own value).
        params: The run's parameters.
        cell_size: Grid cell edge, metres (to match hotspots across draws).
        point: The run itself.
        draws: The outcome of each drawn parameter set.
        ends: Each parameter at its low and at its high end, the others at the run's values.

    Returns:
        ``draws``, ``seed``, ``top_n`` (a rank of ``top_n + 1``: not ranked), ``parameters``,
        ``totals`` (value, p5, p50, p95 and whether the percentiles were widened to take in the
        value), ``hotspots`` (rank, its 5-95 % range and extremes, the share of draws out of the top,
        ``unstable``) and ``sensitivity`` (sorted by how far the parameter moves the total entering
        rivers, then the export; ``rank_changes``: the run's hotspots ranked otherwise at either end),
        and the rule of ``unstable``.
    """
    totals = {name: _spread(point.totals[name], [d.totals[name] for d in draws]) for name in TOTALS}
    per_draw = [_ranks(point, d, params, cell_size) for d in draws]
    hotspots = [
        _hotspot_spread(kind, i + 1, [r[kind][i] for r in per_draw], params.top_n)
        for kind in HOTSPOT_KINDS
        for i in range(len(point.peaks.get(kind, ())))
    ]
    sensitivity = []
    for r, low, high in ends:
        at_low, at_high = _ranks(point, low, params, cell_size), _ranks(point, high, params, cell_size)
        changes = sum(
            1
            for kind in HOTSPOT_KINDS
            for i in range(len(point.peaks.get(kind, ())))
            if at_low[kind][i] != i + 1 or at_high[kind][i] != i + 1
        )
        sensitivity.append(
            {
                "parameter": r.name,
                "low": r.low,
                "high": r.high,
                "totals": {name: [low.totals[name], high.totals[name]] for name in TOTALS},
                "rank_changes": changes,
            }
        )
    sensitivity.sort(key=_moves)
    return {
        "draws": len(draws),
        "seed": settings.seed,
        "top_n": params.top_n,
        "parameters": parameters_document(ranges, params),
        "totals": totals,
        "hotspots": hotspots,
        "sensitivity": sensitivity,
        "unstable_rule": (
            f"the rank's 5-95 % range spans more than {UNSTABLE_SPAN} places, or the hotspot falls out "
            f"of the top {params.top_n} in more than {UNSTABLE_OUT_SHARE:.0%} of the draws"
        ),
        "percentiles": (
            "over the draws; where the run's own value falls outside the 5-95 % range, the range is "
            "widened to take it in (widened: true)"
        ),
    }


def skipped_document(settings: UncertaintySettings, params: HotspotParams, note: str) -> dict[str, Any]:
    """An ``uncertainty.json`` without draws, saying why (``note``): the ranges are still listed."""
    return {
        "draws": 0,
        "seed": settings.seed,
        "note": note,
        "parameters": parameters_document(settings.around(params), params),
        "totals": {},
        "hotspots": [],
        "sensitivity": [],
    }
