"""``plastic-hotspots hotspots``: run the whole hotspot model for one basin config and write its outputs.

Steps: grid -> DEM conditioning and D8 routing -> rivers and basin -> mismanaged plastic from
population and service zones -> observed density and calibration -> leakage-source index ->
river routing with retention at barriers -> sub-basin totals -> ranked hotspots -> files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.config import BasinConfig
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.grid import grid_bounds_lonlat, rowcol
from plastic_hotspots.maps.inputs.observations import load_observations, read_detections_beside
from plastic_hotspots.maps.inputs.population import load_population
from plastic_hotspots.maps.inputs.rasters import load_dem
from plastic_hotspots.maps.inputs.vectors import (
    load_barriers,
    load_boundaries,
    rasterize_lines,
    rasterize_zones,
    read_vector,
    read_zones,
)
from plastic_hotspots.maps.io.results import RASTERS, UNCERTAINTY_JSON
from plastic_hotspots.maps.io.writers import write_json
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.maps.science.basin import (
    array_window,
    barrier_kinds,
    basin_grid,
    check_basin_size,
    check_mass_balance,
    driver_reference,
    outlet_cell,
    river_threshold_km2,
    run_provenance,
    snap_barriers,
    warn_unplaced_barriers,
)
from plastic_hotspots.maps.science.openwater import mask_open_water
from plastic_hotspots.maps.survey.density import sparse_values_at
from plastic_hotspots.maps.survey.fusion import calibrate, far_above, posterior_rate_lo, track_folds
from plastic_hotspots.maps.survey.smoothing import smoothed_density
from plastic_hotspots.maps.wholegrid.outputs import HotspotOutputs, RiverNetwork, SurveyFit, write_outputs
from plastic_hotspots.maps.wholegrid.uncertainty import PointRun, point_outcome, run_uncertainty
from plastic_hotspots.memory import reuse_freed_memory
from plastic_hotspots.progress import progress_bar
from plastic_hotspots.records import GridSpec, Hotspot, HotspotGrid, Layer

__all__ = ["HotspotOutputs", "run_hotspots"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STEPS = 10


@dataclass(frozen=True, slots=True, eq=False)
class ZoneCollection:
    """The collection rate of a run's service zones: each cell's zone number and a rate per zone.

    ``figures`` holds each of the zones' figures per zone number (for the uncertainty draws).
    """

    zone_id: npt.NDArray[np.int32]
    by_zone: FloatArray
    figures: dict[str, FloatArray]

    def at(self, where: Any) -> Any:
        """The rate at cells picked by ``where`` (an index into the grid: a mask, or a ``(row, col)``)."""
        return self.by_zone[self.zone_id[where]]


def run_hotspots(config: BasinConfig, out_dir: Path) -> tuple[HotspotGrid, HotspotOutputs]:
    """Run the hotspot model for a basin config and write its outputs into ``out_dir``.

    Args:
        config: The basin configuration.
        out_dir: Directory for the rasters (COG), ``hotspots.gpkg`` and ``provenance.json``.

    Returns:
        The in-memory result and the paths written.
    """
    params = config.params
    with reuse_freed_memory(), progress_bar() as bar:
        task = bar.add_task("Hotspot model", total=STEPS)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=name)

        grid = basin_grid(config)
        dem = mask_open_water(load_dem(config.dem, grid), params.sea_level_m)  # the sea drains out
        mapped_rivers = _mapped_rivers(config, grid, dem)
        step("Conditioning the DEM and routing flow")
        graph = model.build_flow_graph(dem, grid.cell_size, mapped_rivers, params.stream_burn_m)
        del dem  # the conditioned DEM replaces it
        rivers = _rivers(graph, mapped_rivers, params)
        step("Delineating the basin")
        outlet, basin = _delineate(config, grid, graph)
        rivers &= basin
        step("Mismanaged plastic")
        population, l_src, collection = _mismanaged_plastic(config, grid, basin)
        step("Observed litter density")
        survey = _observed_survey(config, grid, basin, l_src)
        step("Overland transport to rivers")
        p_land = model.land_transport_probability(graph, rivers, params)
        leakage = _leakage(l_src, p_land, basin, survey)
        step("Routing along rivers")
        network, passf = _route_rivers(config, grid, graph, rivers, leakage)
        routing = network.routing
        check_mass_balance(float(leakage.sum()), float(routing.retained.sum()), routing.exported)
        step("Sub-basins")
        sub_labels = _subbasins(graph, network, basin, outlet)
        step("Ranking hotspots")
        reference = _driver_reference(basin, l_src, population, collection, p_land, survey)
        hotspots = _leakage_hotspots(grid, params, leakage, population, collection, p_land, survey, reference)
        hotspots += _accumulation_hotspots(grid, params, graph, network, passf)
        del passf
        step("Parameter uncertainty")
        uncertainty = run_uncertainty(
            PointRun(
                grid,
                params,
                graph,
                basin,
                population,
                l_src,
                collection.zone_id,
                collection.figures,
                network.barriers,
                rivers_of=partial(_rivers, graph, mapped_rivers),
                leakage_of=lambda src, p: _leakage(src, p, basin, survey),
                outcome=point_outcome(l_src, leakage, network.routing, hotspots),
            ),
            config.uncertainty,
        )
        provenance = run_provenance(config, grid, _run_figures(survey, network))
        layers = _result_layers(grid, graph, population, l_src, p_land, leakage, network)
        result = HotspotGrid(grid=grid, layers=layers, hotspots=tuple(hotspots), provenance=provenance)
        # Writing needs only the flow directions of the graph: let the levels, steps and slopes go (its
        # filled DEM and upstream area are layers), so that the writers reuse their memory.
        down = graph.down
        del graph
        step("Writing outputs")
        outputs = write_outputs(
            result,
            out_dir,
            basin=basin,
            sub_labels=sub_labels,
            down=down,
            network=network,
            survey=survey,
            detections=read_detections_beside(config.observations) if config.observations else None,
            boundaries=(
                load_boundaries(config.boundaries, grid_bounds_lonlat(grid)) if config.boundaries else None
            ),
        )
        outputs = replace(outputs, uncertainty=write_json(UNCERTAINTY_JSON.path(out_dir), uncertainty))
        bar.update(task, description="Hotspot model done")
    return result, outputs


def _mapped_rivers(config: BasinConfig, grid: GridSpec, dem: FloatArray) -> BoolArray | None:
    """The cells the config's mapped rivers touch (on cells with data), or None without them."""
    if not config.rivers:
        return None
    touched: BoolArray = rasterize_lines(read_vector(config.rivers, "rivers"), grid) & np.isfinite(dem)
    return touched


def _rivers(graph: model.FlowGraph, mapped: BoolArray | None, params: HotspotParams) -> BoolArray:
    """River cells: the mapped ones and those draining more than the threshold (raised beside mapped)."""
    derived = model.rivers_from_accumulation(graph, river_threshold_km2(params, mapped is not None))
    return mapped | derived if mapped is not None else derived


def _delineate(config: BasinConfig, grid: GridSpec, graph: model.FlowGraph) -> tuple[int, BoolArray]:
    """The outlet (flat cell) and the basin draining to it; without an outlet, the whole DEM."""
    if config.outlet is None:
        outlet = int(np.argmax(np.where(graph.valid.ravel(), graph.accumulation.ravel(), -1)))
        return outlet, graph.valid.copy()
    outlet = outlet_cell(config.outlet, grid, array_window(graph.accumulation))
    basin = terrain.upstream_of(graph.down, graph.levels, outlet).reshape(grid.shape)
    check_basin_size(int(basin.sum()), config.outlet)
    return outlet, basin


def _mismanaged_plastic(
    config: BasinConfig, grid: GridSpec, basin: BoolArray
) -> tuple[FloatArray, FloatArray, ZoneCollection]:
    """Population, mismanaged plastic ``L_src`` (kg/yr, 0 outside the basin) and the collection rate."""
    population = load_population(config.population, grid) if config.population else np.zeros(grid.shape)
    zones = rasterize_zones(
        read_zones(config.zones, config.params.zone_defaults)
        if config.zones
        else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"),
        grid,
        config.params.zone_defaults,
    )
    l_src = model.mismanaged_plastic(
        population, zones.generation_kg_per_cap_day, zones.plastic_share, zones.collection_rate
    )
    l_src[~basin] = 0.0
    # The collection rate is read again only at a few cells: kept as zone numbers and a table (the
    # zones' grids are let go).
    return population, l_src, ZoneCollection(zones.zone_id, zones.by_zone["collection_rate"], zones.by_zone)


def _observed_survey(config: BasinConfig, grid: GridSpec, basin: BoolArray, l_src: FloatArray) -> SurveyFit:
    """The survey's density, the model's calibration on it, and the observed extra source (kg/yr)."""
    if not config.observations:
        return SurveyFit()
    params = config.params
    obs = load_observations(config.observations, grid)
    orow, ocol, oin = rowcol(grid, obs.x, obs.y)
    if not oin.any():
        raise LayerError(
            f"none of the {len(obs)} observations in {config.observations} lie inside the grid",
            hint="check that the survey is of this basin (and its CRS), or widen area_of_interest",
        )
    obs = obs.subset(oin)
    orow, ocol = orow[oin], ocol[oin]
    density, smoothing = smoothed_density(
        orow, ocol, obs, grid.shape, min_observations=params.min_observations, interval=params.interval
    )
    surveyed_cells = density.surveyed_cells()
    surveyed_cells = surveyed_cells[basin.ravel()[surveyed_cells]]
    if not surveyed_cells.size:
        return SurveyFit(obs=obs, density=density, smoothing=smoothing)
    # The calibration is fitted to the cells' own counts (a likelihood needs counts, not smoothed rates).
    items = density.at("items", surveyed_cells)
    n_obs = density.at("observations", surveyed_cells).astype(np.float64)
    populated = l_src.ravel()[surveyed_cells]
    calibration = calibrate(
        populated,
        items,
        n_obs,
        interval=params.interval,
        folds=track_folds(orow * grid.width + ocol, obs.items, obs.track, surveyed_cells),
    )
    expected = calibration.modelled_rate(populated)
    far = far_above(items, n_obs, expected, calibration)
    extra_cells: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    extra: FloatArray = np.zeros(0)
    if calibration.explains_survey and far.any():
        # Litter in cells holding a source the layers miss (e.g. an illegal dump), beyond what the
        # calibrated model expects even at the low end of the cell's rate: added, in kg/yr.
        low = posterior_rate_lo(items[far], n_obs[far], calibration)
        excess = np.maximum(low - expected[far], 0.0)
        extra_cells = surveyed_cells[far]
        extra = params.observed_source_weight * excess / calibration.scale
    return SurveyFit(
        obs=obs,
        density=density,
        smoothing=smoothing,
        calibration=calibration,
        far_cells=surveyed_cells[far],
        extra_cells=extra_cells,
        extra=extra,
    )


def _leakage(l_src: FloatArray, p_land: FloatArray, basin: BoolArray, survey: SurveyFit) -> FloatArray:
    """The leakage-source index (kg/yr entering rivers): what reaches a river of each cell's sources."""
    leakage = l_src * p_land
    leakage[~basin] = 0.0
    cells = survey.extra_cells
    leakage.ravel()[cells] = (l_src.ravel()[cells] + survey.extra) * p_land.ravel()[cells]
    return leakage


def _route_rivers(
    config: BasinConfig, grid: GridSpec, graph: model.FlowGraph, rivers: BoolArray, leakage: FloatArray
) -> tuple[RiverNetwork, FloatArray]:
    """Barriers snapped to the rivers, stream orders, pass factors, and the load routed downstream."""
    params = config.params
    barrier_pass = np.ones(grid.shape)
    barriers = load_barriers(config.barriers, grid, params.barrier_pass) if config.barriers else None
    barrier_cells: list[int] = []
    if barriers is not None:
        barrier_cells = snap_barriers(barriers, grid, array_window(rivers))
        warn_unplaced_barriers(barriers, grid, barrier_cells)
        for cell, factor in zip(barrier_cells, barriers.pass_factor.tolist(), strict=True):
            if cell >= 0:
                barrier_pass.ravel()[cell] *= factor
    order = model.stream_order(graph, rivers).astype(np.int16)  # Strahler orders stay below 20
    passf = model.river_pass_factor(graph, rivers, order, barrier_pass, params)
    del barrier_pass
    routing = model.route_rivers(graph, rivers, leakage, passf)
    return RiverNetwork(rivers, order, routing, barriers, barrier_cells), passf


def _subbasins(
    graph: model.FlowGraph, network: RiverNetwork, basin: BoolArray, outlet: int
) -> npt.NDArray[np.int32]:
    """Sub-basin label of each cell (-1 outside the basin)."""
    pour = _subbasin_pour_points(graph, network.rivers, basin, network.barrier_cells, outlet)
    # A few labels: int32 takes half the memory of int64.
    labels = terrain.label_catchments(graph.down, graph.levels, np.array(pour, dtype=np.int64)).astype(
        np.int32
    )
    labels[~basin.ravel()] = -1
    return labels.reshape(basin.shape)


def _subbasin_pour_points(
    graph: model.FlowGraph, rivers: BoolArray, basin: BoolArray, barrier_cells: list[int], outlet: int
) -> list[int]:
    """Outlet, barriers, and the mouths of tributaries draining at least 5 % of the basin."""
    flat_rivers = rivers.ravel() & basin.ravel()
    acc = graph.accumulation.ravel()
    min_cells = 0.05 * float(basin.sum())
    # Confluences of two or more branches that each drain at least min_cells.
    big = np.nonzero(flat_rivers & (acc >= min_cells))[0]
    targets = graph.down[big]
    ok = targets >= 0
    big, targets = big[ok], targets[ok]
    counts = np.bincount(targets, minlength=graph.down.size)
    pour = {outlet}
    pour.update(c for c in barrier_cells if c >= 0 and basin.ravel()[c])
    pour.update(int(u) for u, d in zip(big.tolist(), targets.tolist(), strict=True) if counts[d] >= 2)
    return sorted(pour)


def _driver_reference(
    basin: BoolArray,
    l_src: FloatArray,
    population: FloatArray,
    collection: ZoneCollection,
    p_land: FloatArray,
    survey: SurveyFit,
) -> dict[str, float]:
    """What lifts a hotspot above the area's typical populated cell (medians; mean observed extra)."""
    populated = basin & (l_src > 0)
    some = bool(populated.any())
    return driver_reference(
        float(np.median(population[populated])) if some else None,
        float(np.median(1.0 - collection.at(populated))) if some else None,
        float(np.median(p_land[populated])) if some else None,
        observed_litter=float(np.sum(survey.extra)) / max(int(np.count_nonzero(basin)), 1),
    )


def _leakage_hotspots(
    grid: GridSpec,
    params: HotspotParams,
    leakage: FloatArray,
    population: FloatArray,
    collection: ZoneCollection,
    p_land: FloatArray,
    survey: SurveyFit,
    reference: dict[str, float],
) -> list[Hotspot]:
    """The ranked leakage hotspots with their drivers."""
    sep = max(1, round(params.hotspot_separation_m / grid.cell_size))
    return [
        model.leakage_hotspot(
            grid,
            rank,
            (r, c),
            float(leakage[r, c]),
            population=float(population[r, c]),
            collection_rate=float(collection.at((r, c))),
            p_land=float(p_land[r, c]),
            observed_extra=float(sparse_values_at(survey.extra_cells, survey.extra, r * grid.width + c, 0.0)),
            reference=reference,
        )
        for rank, (r, c) in enumerate(model.pick_peaks(leakage, params.top_n, sep), start=1)
    ]


def _accumulation_hotspots(
    grid: GridSpec, params: HotspotParams, graph: model.FlowGraph, network: RiverNetwork, passf: FloatArray
) -> list[Hotspot]:
    """The ranked accumulation hotspots (where the rivers retain most) with their drivers."""
    sep = max(1, round(params.hotspot_separation_m / grid.cell_size))
    routing = network.routing
    kind_at = barrier_kinds(network.barriers, network.barrier_cells)
    return [
        model.accumulation_hotspot(
            grid,
            rank,
            (r, c),
            float(routing.retained[r, c]),
            load=float(routing.load[r, c]),
            pass_factor=float(passf[r, c]),
            slope=float(graph.slope[r, c]),
            barrier=kind_at.get(r * grid.width + c),
            low_slope=params.low_slope,
        )
        for rank, (r, c) in enumerate(model.pick_peaks(routing.retained, params.top_n, sep), start=1)
    ]


def _run_figures(survey: SurveyFit, network: RiverNetwork) -> dict[str, float | int | str | bool | None]:
    """The run's figures recorded in its provenance: the calibration, the smoothing, the export."""
    calibration, smoothing = survey.calibration, survey.smoothing
    return {
        **(
            {f"calibration.{k}": v for k, v in calibration.to_dict().items()}
            if calibration is not None
            else {}
        ),
        **({f"smoothing.{k}": v for k, v in smoothing.to_dict().items()} if smoothing is not None else {}),
        "exported_kg_yr": network.routing.exported,
    }


def _result_layers(
    grid: GridSpec,
    graph: model.FlowGraph,
    population: FloatArray,
    l_src: FloatArray,
    p_land: FloatArray,
    leakage: FloatArray,
    network: RiverNetwork,
) -> dict[str, Layer]:
    """The run's rasters as layers, by name."""
    # The upstream area in cells is not read after this: turned into km2 in place (a grid less).
    upstream_km2 = graph.accumulation
    upstream_km2 *= grid.cell_area_m2
    upstream_km2 /= 1e6
    routing = network.routing
    values = {
        "dem": graph.filled,
        "population": population,
        "mismanaged_plastic": l_src,
        "p_land": p_land,
        "leakage_index": leakage,
        "river_load": routing.load,
        "accumulation": routing.retained,
        "flow_accumulation": upstream_km2,
    }
    return {
        name: Layer(name, grid, values[name], raster.unit, raster.kind, raster.description)
        for name, raster in RASTERS.items()
    }
