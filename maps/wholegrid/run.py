"""``plastic-hotspots hotspots``: run the whole hotspot model for one basin config and write its outputs.

Steps: grid -> DEM conditioning and D8 routing -> rivers and basin -> mismanaged plastic from
population and service zones -> observed density and calibration -> leakage-source index ->
river routing with retention at barriers -> sub-basin totals -> ranked hotspots -> files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from rasterio import features
from rasterio.transform import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.maps.config import BasinConfig
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.grid import grid_bounds_lonlat, grid_for_bounds, grid_to_lonlat, rowcol
from plastic_hotspots.maps.inputs.observations import Observations, load_observations, read_detections_beside
from plastic_hotspots.maps.inputs.population import load_population
from plastic_hotspots.maps.inputs.rasters import load_dem, raster_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import (
    Barriers,
    load_barriers,
    load_boundaries,
    rasterize_lines,
    rasterize_zones,
    read_vector,
)
from plastic_hotspots.maps.io.writers import write_cog, write_gpkg
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.maps.science.vectors import (
    barrier_frame,
    hotspot_frame,
    river_chains,
    river_lines_frame,
)
from plastic_hotspots.maps.survey.cells import cells_frame, gi_star_at
from plastic_hotspots.maps.survey.density import DensityGrid, observed_density, sparse_values_at
from plastic_hotspots.maps.survey.fusion import (
    Calibration,
    calibrate,
    far_above,
    track_folds,
    write_fusion_report,
)
from plastic_hotspots.memory import reuse_freed_memory
from plastic_hotspots.progress import progress_bar
from plastic_hotspots.provenance import make_provenance
from plastic_hotspots.records import GridSpec, HotspotGrid, Layer

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STEPS = 9
MIN_BASIN_CELLS = 4


@dataclass(frozen=True, slots=True)
class HotspotOutputs:
    """Paths written by :func:`run_hotspots`."""

    directory: Path
    rasters: dict[str, Path]
    vectors: Path
    provenance: Path
    fusion: tuple[Path, Path] | None = None


def _grid(config: BasinConfig) -> GridSpec:
    bounds = config.area_of_interest or raster_bounds_lonlat(config.dem)
    return grid_for_bounds(bounds, config.params.cell_size_m, config.crs)


def _snap_barriers(
    barriers: Barriers, grid: GridSpec, rivers: BoolArray, radius: int = 3
) -> tuple[list[int], list[int]]:
    """Flat river-cell index of each barrier (nearest river cell within ``radius`` cells), -1 if none."""
    rows, cols, inside = rowcol(grid, barriers.x, barriers.y)
    cells: list[int] = []
    dist_m: list[int] = []
    for r, c, ok in zip(rows.tolist(), cols.tolist(), inside.tolist(), strict=True):
        if not ok:
            cells.append(-1)
            dist_m.append(-1)
            continue
        r0, r1 = max(0, r - radius), min(grid.height, r + radius + 1)
        c0, c1 = max(0, c - radius), min(grid.width, c + radius + 1)
        rr, cc = np.nonzero(rivers[r0:r1, c0:c1])
        if rr.size == 0:
            cells.append(-1)
            dist_m.append(-1)
            continue
        d = (rr + r0 - r) ** 2 + (cc + c0 - c) ** 2
        k = int(np.argmin(d))
        cells.append(int((rr[k] + r0) * grid.width + cc[k] + c0))
        dist_m.append(round(float(np.sqrt(d[k])) * grid.cell_size))
    return cells, dist_m


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


def _polygons(mask: BoolArray, labels: npt.NDArray[np.int32 | np.uint8], grid: GridSpec) -> dict[int, object]:
    """Dissolve labelled cells into one (multi)polygon per label, in the grid CRS."""
    geoms: dict[int, list[object]] = {}
    for geom, value in features.shapes(labels, mask=mask, transform=Affine(*grid.transform), connectivity=4):
        geoms.setdefault(int(value), []).append(shape(geom))
    return {k: unary_union(v) for k, v in geoms.items()}


def _river_lines(
    down: npt.NDArray[np.int64], rivers: BoolArray, order: npt.NDArray[np.integer], grid: GridSpec
) -> gpd.GeoDataFrame:
    """River network as lines (grid CRS), one multi-line per stream order (see :func:`river_lines_frame`)."""
    seg = np.flatnonzero(rivers.ravel() & (down >= 0))  # a segment from each of these cells
    x, y, point_line, line_order = river_chains(seg, down[seg], order.ravel()[seg], grid)
    return river_lines_frame(shapely.linestrings(x, y, indices=point_line), line_order, grid.crs)


def _survey_points(obs: Observations, grid: GridSpec) -> gpd.GeoDataFrame:
    """One point per observation (EPSG:4326): items, per-class counts, track, time, image and file."""
    lon, lat = grid_to_lonlat(grid, obs.x, obs.y)
    n = len(obs)
    blank = np.full(n, "")
    columns: dict[str, object] = {
        "items": obs.items.astype(np.int64),
        "track": obs.track,
        "captured_at": obs.captured_at if obs.captured_at is not None else blank,
        "image": obs.image if obs.image is not None else blank,
        "path": obs.path if obs.path is not None else blank,
    }
    for name, counts in obs.classes.items():
        columns[f"n_{name}"] = counts.astype(np.int64)
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


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

        grid = _grid(config)
        dem = load_dem(config.dem, grid)
        mapped_rivers = (
            rasterize_lines(read_vector(config.rivers, "rivers"), grid) & np.isfinite(dem)
            if config.rivers
            else None
        )
        step("Conditioning the DEM and routing flow")
        graph = model.build_flow_graph(dem, grid.cell_size, mapped_rivers, params.stream_burn_m)
        del dem  # the conditioned DEM replaces it
        rivers = (
            mapped_rivers | model.rivers_from_accumulation(graph, params.river_threshold_km2 * 4)
            if mapped_rivers is not None
            else model.rivers_from_accumulation(graph, params.river_threshold_km2)
        )

        step("Delineating the basin")
        basin: BoolArray
        if config.outlet is not None:
            ox, oy = _lonlat_point(grid, config.outlet)
            rows, cols, inside = rowcol(grid, ox, oy)
            if not bool(inside[0]):
                raise LayerError(
                    f"the outlet {config.outlet} lies outside the grid",
                    hint="give the outlet as [lon, lat] inside the DEM's extent",
                )
            r, c = terrain.snap_to_max(graph.accumulation, int(rows[0]), int(cols[0]), 5)
            outlet = r * grid.width + c
            basin = terrain.upstream_of(graph.down, graph.levels, outlet).reshape(grid.shape)
            if int(basin.sum()) < MIN_BASIN_CELLS:
                raise LayerError(
                    f"only {int(basin.sum())} cells drain to the outlet {list(config.outlet)}: "
                    "the basin is empty",
                    hint="put the outlet on the main river (it is snapped to the largest flow within "
                    "5 cells), or leave it out to model the whole DEM",
                )
        else:
            outlet = int(np.argmax(np.where(graph.valid.ravel(), graph.accumulation.ravel(), -1)))
            basin = graph.valid.copy()
        rivers = rivers & basin

        step("Mismanaged plastic")
        population = load_population(config.population, grid) if config.population else np.zeros(grid.shape)
        zones = rasterize_zones(
            read_vector(config.zones, "zones")
            if config.zones
            else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"),
            grid,
            params.zone_defaults,
        )
        l_src = model.mismanaged_plastic(
            population, zones.generation_kg_per_cap_day, zones.plastic_share, zones.collection_rate
        )
        l_src[~basin] = 0.0
        # The collection rate is read again only at a few cells: kept as zone numbers and a table.
        zone_id, collection_by_zone = zones.zone_id, zones.by_zone["collection_rate"]
        del zones

        step("Observed litter density")
        density: DensityGrid | None = None
        obs: Observations | None = None
        calibration: Calibration | None = None
        # The observed extra source (kg/yr) lives on surveyed cells only: their flat indices, values.
        extra_cells: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        extra: FloatArray = np.zeros(0)
        if config.observations:
            obs = load_observations(config.observations, grid)
            orow, ocol, oin = rowcol(grid, obs.x, obs.y)
            if not oin.any():
                raise LayerError(
                    f"none of the {len(obs)} observations in {config.observations} lie inside the grid",
                    hint="check that the survey is of this basin (and its CRS), or widen area_of_interest",
                )
            obs = obs.subset(oin)
            orow, ocol = orow[oin], ocol[oin]
            density = observed_density(
                orow,
                ocol,
                obs,
                grid.shape,
                min_observations=params.min_observations,
                prior_strength=None,
                prior_floor=params.prior_strength_obs,
                interval=params.interval,
            )
            surveyed_cells = density.surveyed_cells()
            surveyed_cells = surveyed_cells[basin.ravel()[surveyed_cells]]
            if surveyed_cells.size:
                calibration = calibrate(
                    l_src.ravel()[surveyed_cells],
                    density.at("items", surveyed_cells),
                    density.at("observations", surveyed_cells).astype(np.float64),
                    interval=params.interval,
                    folds=track_folds(orow * grid.width + ocol, obs.items, obs.track, surveyed_cells),
                )
                # Litter seen beyond what the calibrated model expects (even at the low end of its
                # interval) is a source the layers miss, e.g. an illegal dump: add it, in kg/yr.
                populated = l_src.ravel()[surveyed_cells]
                expected = calibration.modelled_rate(populated)
                excess = np.maximum(density.at("rate_lo", surveyed_cells) - expected, 0.0)
                per_kg = calibration.scale if calibration.scale > 0 else None
                if per_kg is None:
                    per_kg = density.area_rate / max(float(populated.mean()), 1e-9)
                extra_cells = surveyed_cells
                extra = params.observed_source_weight * excess / max(per_kg, 1e-12)

        step("Overland transport to rivers")
        p_land = model.land_transport_probability(graph, rivers, params)
        leakage = l_src * p_land
        leakage[~basin] = 0.0
        leakage.ravel()[extra_cells] = (l_src.ravel()[extra_cells] + extra) * p_land.ravel()[extra_cells]

        step("Routing along rivers")
        barrier_pass = np.ones(grid.shape)
        barriers: Barriers | None = None
        barrier_cells: list[int] = []
        if config.barriers:
            barriers = load_barriers(config.barriers, grid, params.barrier_pass)
            barrier_cells, _ = _snap_barriers(barriers, grid, rivers)
            for cell, factor in zip(barrier_cells, barriers.pass_factor.tolist(), strict=True):
                if cell >= 0:
                    barrier_pass.ravel()[cell] *= factor
        order = model.stream_order(graph, rivers).astype(np.int16)  # Strahler orders stay below 20
        passf = model.river_pass_factor(graph, rivers, order, barrier_pass, params)
        del barrier_pass
        routing = model.route_rivers(graph, rivers, leakage, passf)

        step("Sub-basins")
        pour = _subbasin_pour_points(graph, rivers, basin, barrier_cells, outlet)
        # A few labels: int32 takes half the memory of int64.
        sub_labels = terrain.label_catchments(
            graph.down, graph.levels, np.array(pour, dtype=np.int64)
        ).astype(np.int32)
        sub_labels[~basin.ravel()] = -1
        sub_labels = sub_labels.reshape(grid.shape)

        step("Ranking hotspots")
        sep = max(1, round(params.hotspot_separation_m / grid.cell_size))
        # What lifts a hotspot above the area's typical populated cell (the median, or the mean of the
        # observed extra source).
        populated_cells = basin & (l_src > 0)
        some = bool(populated_cells.any())
        ref = {
            "population": float(np.median(population[populated_cells])) if some else 0.0,
            "poor collection": (
                float(np.median(1.0 - collection_by_zone[zone_id[populated_cells]])) if some else 0.0
            ),
            "near a river": float(np.median(p_land[populated_cells])) if some else 0.0,
            "observed litter": max(float(np.sum(extra)) / max(int(np.count_nonzero(basin)), 1), 1e-9),
        }
        del populated_cells
        hotspots = [
            model.leakage_hotspot(
                grid,
                rank,
                (r, c),
                float(leakage[r, c]),
                population=float(population[r, c]),
                collection_rate=float(collection_by_zone[zone_id[r, c]]),
                p_land=float(p_land[r, c]),
                observed_extra=float(sparse_values_at(extra_cells, extra, r * grid.width + c, 0.0)),
                reference=ref,
            )
            for rank, (r, c) in enumerate(model.pick_peaks(leakage, params.top_n, sep), start=1)
        ]
        kind_at = {}
        if barriers is not None:
            kind_at = {
                cell: kind for cell, kind in zip(barrier_cells, barriers.kind, strict=True) if cell >= 0
            }
        hotspots += [
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
        del passf

        provenance = make_provenance(
            "maps.hotspots",
            parameters={
                **params.flat(),
                "basin": config.name,
                "grid_crs": grid.crs,
                **(
                    {f"calibration.{k}": v for k, v in calibration.to_dict().items()}
                    if calibration is not None
                    else {}
                ),
                "observed.prior_strength_obs": density.prior_strength if density is not None else None,
                "exported_kg_yr": routing.exported,
            },
            inputs=config.inputs(),
        )
        # The upstream area in cells is not read after this: turned into km2 in place (a grid less).
        upstream_km2 = graph.accumulation
        upstream_km2 *= grid.cell_area_m2
        upstream_km2 /= 1e6
        layers = {
            "dem": Layer("dem", grid, graph.filled, "m", "continuous", "conditioned DEM"),
            "population": Layer("population", grid, population, "people", "count", "people per cell"),
            "mismanaged_plastic": Layer("mismanaged_plastic", grid, l_src, "kg/yr", "count", "L_src"),
            "p_land": Layer("p_land", grid, p_land, "1", "continuous", "probability of reaching a river"),
            "leakage_index": Layer(
                "leakage_index", grid, leakage, "kg/yr", "count", "plastic entering rivers"
            ),
            "river_load": Layer("river_load", grid, routing.load, "kg/yr", "continuous", "load carried"),
            "accumulation": Layer("accumulation", grid, routing.retained, "kg/yr", "count", "load retained"),
            "flow_accumulation": Layer(
                "flow_accumulation",
                grid,
                upstream_km2,
                "km2",
                "continuous",
                "upstream area",
            ),
        }
        result = HotspotGrid(grid=grid, layers=layers, hotspots=tuple(hotspots), provenance=provenance)
        # Writing needs only the flow directions of the graph: let the levels, steps and slopes go (its
        # filled DEM and upstream area are layers), so that the writers reuse their memory.
        down = graph.down
        del graph

        step("Writing outputs")
        outputs = _write_outputs(
            result,
            out_dir,
            basin,
            sub_labels,
            down,
            rivers,
            order,
            routing,
            barriers,
            barrier_cells,
            density,
            obs,
            calibration,
            l_src,
            read_detections_beside(config.observations) if config.observations else None,
            load_boundaries(config.boundaries, grid_bounds_lonlat(grid)) if config.boundaries else None,
        )
        bar.update(task, description="Hotspot model done")
    return result, outputs


def _lonlat_point(grid: GridSpec, lonlat: tuple[float, float]) -> tuple[FloatArray, FloatArray]:
    from plastic_hotspots.maps.grid import lonlat_to_grid

    return lonlat_to_grid(grid, np.array([lonlat[0]]), np.array([lonlat[1]]))


def _write_outputs(
    result: HotspotGrid,
    out_dir: Path,
    basin: BoolArray,
    sub_labels: npt.NDArray[np.int32],
    down: npt.NDArray[np.int64],
    rivers: BoolArray,
    order: npt.NDArray[np.integer],
    routing: model.RiverRouting,
    barriers: Barriers | None,
    barrier_cells: list[int],
    density: DensityGrid | None,
    obs: Observations | None,
    calibration: Calibration | None,
    l_src: FloatArray,
    detections: gpd.GeoDataFrame | None,
    boundaries: gpd.GeoDataFrame | None,
) -> HotspotOutputs:
    grid, prov = result.grid, result.provenance
    out_dir.mkdir(parents=True, exist_ok=True)
    rasters: dict[str, Path] = {}
    for name, layer in result.layers.items():
        rasters[name] = write_cog(
            out_dir / f"{name}.tif",
            layer.values,
            grid,
            prov,
            description=layer.description,
            unit=layer.unit,
            mask=basin if name != "dem" else None,
        )

    vectors: dict[str, gpd.GeoDataFrame] = {}
    basin_geom = _polygons(basin, basin.view(np.uint8), grid).get(1)
    vectors["basin"] = gpd.GeoDataFrame(
        {
            "name": [result.provenance.parameters.get("basin", "basin")],
            "area_km2": [float(basin.sum()) * grid.cell_area_m2 / 1e6],
        },
        geometry=[basin_geom],
        crs=grid.crs,
    )
    subs = _polygons(sub_labels >= 0, sub_labels, grid)
    leak = result.layers["leakage_index"].values
    # Per-sub-basin sums in one pass over the grid each (labels -1, outside every sub-basin, dropped).
    slot = sub_labels.ravel().astype(np.int64) + 1
    size = int(slot.max()) + 1 if slot.size else 1
    cells = np.bincount(slot, minlength=size)
    leak_sum = np.bincount(slot, weights=leak.ravel(), minlength=size)
    retained_sum = np.bincount(slot, weights=routing.retained.ravel(), minlength=size)
    del slot
    sub_rows = [
        {
            "subbasin": label + 1,
            "name": f"Sub-basin {label + 1}",
            "area_km2": float(cells[label + 1]) * grid.cell_area_m2 / 1e6,
            "leakage_kg_yr": float(leak_sum[label + 1]),
            "accumulation_kg_yr": float(retained_sum[label + 1]),
            "geometry": geom,
        }
        for label, geom in sorted(subs.items())
    ]
    vectors["subbasins"] = gpd.GeoDataFrame(
        sub_rows,
        columns=["subbasin", "name", "area_km2", "leakage_kg_yr", "accumulation_kg_yr", "geometry"],
        geometry="geometry",
        crs=grid.crs,
    )
    vectors["rivers"] = _river_lines(down, rivers, order, grid)
    if barriers is not None:
        retained = [float(routing.retained.ravel()[c]) if c >= 0 else 0.0 for c in barrier_cells]
        vectors["barriers"] = barrier_frame(barriers, barrier_cells, retained, grid.crs)
    for kind in ("leakage", "accumulation"):
        vectors[f"{kind}_hotspots"] = hotspot_frame([h for h in result.hotspots if h.kind == kind])
    fusion: tuple[Path, Path] | None = None
    if density is not None:
        cells = cells_frame(density, grid)
        rr, cc = cells["row"].to_numpy(), cells["col"].to_numpy()
        # Gi* over the surveyed cells, without grids; observed cells that are not surveyed get NaN.
        surveyed = density.surveyed_cells()
        gi_z, gi_p = gi_star_at(*np.divmod(surveyed, grid.width), density.at("rate", surveyed), grid.shape)
        cells["gi_z"] = sparse_values_at(surveyed, gi_z, density.observed_cells(), np.nan)
        cells["gi_p"] = sparse_values_at(surveyed, gi_p, density.observed_cells(), np.nan)
        if calibration is not None:
            modelled = calibration.modelled_rate(l_src[rr, cc])
            cells["modelled_rate"] = modelled
            cells["far_above_model"] = cells["surveyed"].to_numpy() & far_above(
                cells["items"].to_numpy(), cells["observations"].to_numpy() * modelled
            )
            in_basin = surveyed[basin.ravel()[surveyed]]
            fusion = write_fusion_report(
                out_dir,
                grid,
                calibration,
                l_src,
                in_basin,
                density.at("rate", in_basin),
                density.at("rate_lo", in_basin),
                density.at("rate_hi", in_basin),
                basin,
            )
        vectors["observed_density"] = cells
    if boundaries is not None:
        vectors["admin_boundaries"] = boundaries
    if obs is not None:
        vectors["survey_points"] = _survey_points(obs, grid)
        if detections is not None and obs.image is not None:
            vectors["detections"] = detections[detections["image"].isin(set(obs.image.tolist()))]
    gpkg = write_gpkg(out_dir / "hotspots.gpkg", vectors, prov)

    prov_path = out_dir / "provenance.json"
    with atomic_path(prov_path) as tmp:
        tmp.write_text(json.dumps(json.loads(prov.to_json()), indent=2) + "\n", encoding="utf-8")
    return HotspotOutputs(
        directory=out_dir, rasters=rasters, vectors=gpkg, provenance=prov_path, fusion=fusion
    )
