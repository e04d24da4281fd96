"""Parameter uncertainty of a whole-grid run: rerun what each drawn parameter set changes, on the same graph.

The conditioned DEM and its flow graph, the basin, the population and the zones' figures, the barriers
and the observed extra source of the survey stay as the run made them; each parameter set reruns the
mismanaged plastic (when its multipliers or shift change it), the rivers (from the upstream area, when the
threshold changes), the overland transport, the barriers' pass factors, the river routing and the ranking.
The draws and the summary are mode-independent (:mod:`plastic_hotspots.maps.science.uncertainty`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.inputs.vectors import Barriers
from plastic_hotspots.maps.params import HotspotParams, UncertaintySettings, point_value
from plastic_hotspots.maps.science import model
from plastic_hotspots.maps.science.basin import array_window, check_mass_balance, snap_barriers
from plastic_hotspots.maps.science.uncertainty import (
    HOTSPOT_KINDS,
    Outcome,
    apply_values,
    draw_values,
    mismanaged_with,
    skipped_document,
    uncertainty_document,
)
from plastic_hotspots.records import GridSpec, Hotspot

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class PointRun:
    """What a whole-grid run hands to its draws: what they reuse, and its own outcome.

    Attributes:
        grid: The run's grid.
        params: The run's parameters.
        graph: The conditioned DEM's flow graph (read only).
        basin: Cells of the basin.
        population: People per cell.
        l_src: The run's mismanaged plastic (kg/yr, 0 outside the basin).
        zone_id: Zone number of each cell.
        by_zone: Each of the zones' figures per zone number (entry 0: the default).
        barriers: The barriers read, or None.
        rivers_of: The river cells for a set of parameters (the run's own rule; cut to the basin here).
        leakage_of: The leakage into rivers from mismanaged plastic and ``P_land`` (the run's own rule,
            with the survey's observed extra source held as the run fitted it).
        outcome: The run's own totals and ranked hotspot cells.
    """

    grid: GridSpec
    params: HotspotParams
    graph: model.FlowGraph
    basin: BoolArray
    population: FloatArray
    l_src: FloatArray
    zone_id: npt.NDArray[np.int32]
    by_zone: Mapping[str, FloatArray]
    barriers: Barriers | None
    rivers_of: Callable[[HotspotParams], BoolArray]
    leakage_of: Callable[[FloatArray, FloatArray], FloatArray]
    outcome: Outcome
    _rivers: dict[float, tuple[BoolArray, npt.NDArray[np.int16], list[int]]] = field(default_factory=dict)

    def rivers(self, params: HotspotParams) -> tuple[BoolArray, npt.NDArray[np.int16], list[int]]:
        """River cells, stream orders and snapped barrier cells for a threshold (the last two kept)."""
        key = params.river_threshold_km2
        if key not in self._rivers:
            if len(self._rivers) >= 2:  # keep the run's own and the latest
                self._rivers.pop(next(k for k in self._rivers if k != self.params.river_threshold_km2))
            rivers = self.rivers_of(params) & self.basin
            order = model.stream_order(self.graph, rivers).astype(np.int16)
            cells = (
                snap_barriers(self.barriers, self.grid, array_window(rivers))
                if self.barriers is not None
                else []
            )
            self._rivers[key] = (rivers, order, cells)
        return self._rivers[key]


def point_outcome(
    l_src: FloatArray, leakage: FloatArray, routing: model.RiverRouting, hotspots: Sequence[Hotspot]
) -> Outcome:
    """The run's own outcome: its basin totals and its ranked hotspot cells of each kind."""
    return Outcome(
        totals={
            "mismanaged_kg_yr": float(l_src.sum()),
            "into_rivers_kg_yr": float(leakage.sum()),
            "retained_kg_yr": float(routing.retained.sum()),
            "exported_kg_yr": routing.exported,
        },
        peaks={
            kind: [(h.row, h.col) for h in sorted(hotspots, key=lambda h: h.rank) if h.kind == kind]
            for kind in HOTSPOT_KINDS
        },
    )


def evaluate(point: PointRun, values: Mapping[str, float]) -> Outcome:
    """The basin totals and ranked hotspot cells with the parameters of ``values`` changed.

    A barrier's pass factor is its own (from its kind, or given in the barriers layer) times the ratio
    of the drawn factor of its kind to the run's.
    """
    params, change = apply_values(point.params, values)
    graph = point.graph
    if change.neutral:
        l_src = point.l_src
    else:
        l_src = mismanaged_with(point.population, point.zone_id, point.by_zone, change)
        l_src[~point.basin] = 0.0
    rivers, order, barrier_cells = point.rivers(params)
    p_land = model.land_transport_probability(graph, rivers, params)
    leakage = point.leakage_of(l_src, p_land)
    del p_land
    barrier_pass = np.ones(graph.shape)
    if point.barriers is not None:
        for cell, kind, factor in zip(
            barrier_cells, point.barriers.kind, point.barriers.pass_factor.tolist(), strict=True
        ):
            if cell >= 0:
                base = point.params.barrier_pass.for_kind(kind)
                ratio = params.barrier_pass.for_kind(kind) / base if base > 0 else 1.0
                barrier_pass.ravel()[cell] *= min(factor * ratio, 1.0)
    passf = model.river_pass_factor(graph, rivers, order, barrier_pass, params)
    routing = model.route_rivers(graph, rivers, leakage, passf)
    into_rivers, retained = float(leakage.sum()), float(routing.retained.sum())
    check_mass_balance(into_rivers, retained, routing.exported)
    sep = max(1, round(params.hotspot_separation_m / point.grid.cell_size))
    return Outcome(
        totals={
            "mismanaged_kg_yr": float(l_src.sum()),
            "into_rivers_kg_yr": into_rivers,
            "retained_kg_yr": retained,
            "exported_kg_yr": routing.exported,
        },
        peaks={
            "leakage": model.pick_peaks(leakage, params.top_n, sep),
            "accumulation": model.pick_peaks(routing.retained, params.top_n, sep),
        },
    )


def run_uncertainty(point: PointRun, settings: UncertaintySettings) -> dict[str, Any]:
    """Draw ``settings.draws`` parameter sets, and each parameter at its ends, and summarise them.

    Returns:
        The ``uncertainty.json`` document
        (:func:`plastic_hotspots.maps.science.uncertainty.uncertainty_document`); with ``draws: 0``, one
        without draws or sensitivity that says so.
    """
    if settings.draws == 0:
        return skipped_document(settings, point.params, "no parameter sets drawn (uncertainty draws: 0)")
    ranges = settings.around(point.params)
    draws = [evaluate(point, values) for values in draw_values(ranges, settings.draws, settings.seed)]
    ends = []
    for r in ranges:
        here = point_value(point.params, r.name)
        low, high = (
            point.outcome if value == here else evaluate(point, {r.name: value}) for value in (r.low, r.high)
        )
        ends.append((r, low, high))
    return uncertainty_document(
        settings, ranges, point.params, point.grid.cell_size, point.outcome, draws, ends
    )
