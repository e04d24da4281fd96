"""The hotspot model: mismanaged plastic, overland transport, river routing and retention.

Pure functions on arrays of one grid; no files. See :mod:`plastic_hotspots.maps.params` for the equations and
their
parameters. The flow graph comes from :mod:`plastic_hotspots.maps.science.terrain` (flat ``down`` index array
and its
topological ``levels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.grid import cell_lonlat
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science import terrain
from plastic_hotspots.records import GridSpec, Hotspot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True, eq=False)
class FlowGraph:
    """A conditioned DEM and its D8 flow graph.

    Attributes:
        shape: ``(rows, cols)``.
        cell_size: Cell edge, metres.
        filled: The conditioned (depression-filled) DEM.
        down: Flat index of each cell's downstream cell, -1 where flow leaves the grid.
        levels: Topological layers of ``down`` (upstream first).
        step: Metres from each cell to its downstream cell.
        slope: Local slope (rise/run) of the conditioned DEM.
        accumulation: Upstream area of each cell in cells, itself included.
        valid: Cells with data.
    """

    shape: tuple[int, int]
    cell_size: float
    filled: FloatArray
    down: IntArray
    levels: list[IntArray]
    step: FloatArray
    slope: FloatArray
    accumulation: FloatArray
    valid: BoolArray


def build_flow_graph(
    dem: FloatArray, cell_size: float, river_mask: BoolArray | None = None, burn_m: float = 0.0
) -> FlowGraph:
    """Condition a DEM and route D8 flow over it.

    Args:
        dem: Elevations in metres, NaN for nodata.
        cell_size: Cell edge in metres.
        river_mask: Mapped river cells to burn into the DEM so that flow follows them.
        burn_m: Burn depth in metres.

    Returns:
        The flow graph.
    """
    nodata = ~np.isfinite(dem)
    work = np.where(nodata, np.nan, dem).astype(np.float64)
    if river_mask is not None and burn_m > 0:
        work = np.where(river_mask & ~nodata, work - burn_m, work)
    conditioned = terrain.condition(work, cell_size, nodata=nodata)
    filled, down = conditioned.filled, conditioned.down
    del conditioned, work
    levels = terrain.flow_levels(down)
    step = terrain.step_length(down, dem.shape, cell_size)
    slope = terrain.slope(filled, cell_size)
    valid = ~nodata
    accumulation = terrain.accumulate(down, levels, valid.ravel().astype(np.float64))
    return FlowGraph(
        shape=(int(dem.shape[0]), int(dem.shape[1])),
        cell_size=cell_size,
        filled=filled,
        down=down,
        levels=levels,
        step=step,
        slope=np.nan_to_num(slope, nan=0.0),
        accumulation=accumulation.reshape(dem.shape),
        valid=valid,
    )


def rivers_from_accumulation(graph: FlowGraph, threshold_km2: float) -> BoolArray:
    """River cells: those whose upstream area passes ``threshold_km2``."""
    cell_km2 = graph.cell_size * graph.cell_size / 1e6
    return (graph.accumulation * cell_km2 >= threshold_km2) & graph.valid


def mismanaged_plastic(
    population: FloatArray,
    generation_kg_per_cap_day: FloatArray,
    plastic_share: FloatArray,
    collection_rate: FloatArray,
) -> FloatArray:
    """``L_src``: mismanaged plastic per cell in kg/yr.

    ``population x generation x 365.25 x plastic_share x (1 - collection_rate)``.
    """
    out = population * generation_kg_per_cap_day  # then in place, in the same order of operations
    out *= DAYS_PER_YEAR
    out *= plastic_share
    uncollected = np.clip(collection_rate, 0.0, 1.0)
    np.subtract(1.0, uncollected, out=uncollected)
    out *= uncollected
    return out


def land_transport_probability(graph: FlowGraph, rivers: BoolArray, params: HotspotParams) -> FloatArray:
    """``P_land``: probability that plastic leaving a cell reaches a river along its flow path.

    Each overland step of length ``s`` keeps ``exp(-s / lambda)`` with
    ``lambda = land_lambda_m x (1 + land_lambda_slope_gain x slope)``; river cells have 1, cells whose
    path leaves the grid before meeting a river have 0.
    """
    lam = params.land_lambda_m * (1.0 + params.land_lambda_slope_gain * graph.slope.ravel())
    factor = np.exp(-graph.step / lam)
    p = terrain.downstream_product(graph.down, graph.levels, factor, rivers.ravel())
    return p.reshape(graph.shape)


def stream_order(graph: FlowGraph, rivers: BoolArray) -> IntArray:
    """Strahler order of river cells (0 off the rivers)."""
    return terrain.strahler_order(graph.down, graph.levels, rivers.ravel()).reshape(graph.shape)


@dataclass(frozen=True, slots=True, eq=False)
class RiverRouting:
    """Plastic load carried and retained along the rivers.

    Attributes:
        load: kg/yr carried through each river cell (inflow plus what arrives from upstream).
        retained: kg/yr retained in each river cell (the accumulation strength).
        exported: kg/yr leaving the river network: at the grid's edge, at the basin's outlet, or into
            nodata (see :func:`network_exits`).
    """

    load: FloatArray
    retained: FloatArray
    exported: float


def river_pass_factor(
    graph: FlowGraph,
    rivers: BoolArray,
    order: npt.NDArray[np.integer],
    barrier_pass: FloatArray,
    params: HotspotParams,
) -> FloatArray:
    """Fraction of the load each river cell passes downstream.

    ``exp(-step / mu(order))`` for in-channel retention, times the barrier pass factor of the cell,
    times ``low_slope_pass`` in low-slope reaches. 1 off the rivers.
    """
    cells = np.flatnonzero(rivers.ravel())  # only river cells hold anything but 1
    mu_m = params.river_mu_km * 1000.0 * np.power(2.0, np.maximum(order.ravel()[cells], 1) - 1)
    decay = np.exp(-graph.step[cells] / mu_m)
    trap = np.where(graph.slope.ravel()[cells] < params.low_slope, params.low_slope_pass, 1.0)
    factor = np.ones(graph.shape)
    factor.ravel()[cells] = decay * trap * barrier_pass.ravel()[cells]
    return factor


def network_exits(down: npt.NDArray[np.int64], rivers: BoolArray) -> npt.NDArray[np.int64]:
    """Flat indices of the river cells whose downstream cell is not a river cell (ascending).

    There the load leaves the network: at the grid's edge, at the basin's outlet (the rivers stop at
    the basin), or into nodata such as the sea. What passes such a cell is exported.
    """
    flat = rivers.ravel()
    cells = np.flatnonzero(flat)
    target = down[cells]
    leaves = target < 0
    leaves[~leaves] = ~flat[target[~leaves]]
    return cells[leaves]


def route_rivers(
    graph: FlowGraph, rivers: BoolArray, leakage: FloatArray, pass_factor: FloatArray
) -> RiverRouting:
    """Route the leakage (kg/yr entering waterways) through the river network.

    Each cell's leakage enters the river at the first river cell of its flow path; the load then
    moves downstream, each river cell retaining ``load x (1 - pass_factor)``.
    """
    # Grid-sized temporaries are freed or updated in place as soon as they are done with: this is
    # where a run holds the most arrays at once.
    flat_rivers = rivers.ravel()
    entry = terrain.first_downstream(graph.down, graph.levels, flat_rivers)
    has_entry = entry >= 0
    inflow = np.asarray(
        np.bincount(entry[has_entry], weights=leakage.ravel()[has_entry], minlength=flat_rivers.size),
        dtype=np.float64,
    )
    del entry, has_entry
    transfer = np.where(flat_rivers, pass_factor.ravel(), 0.0)
    load = terrain.accumulate(graph.down, graph.levels, inflow, transfer)
    del inflow, transfer
    off_rivers = ~flat_rivers
    load[off_rivers] = 0.0
    retained = 1.0 - pass_factor.ravel()
    retained *= load
    retained[off_rivers] = 0.0
    exits = network_exits(graph.down, flat_rivers)
    exported = float(np.sum(load[exits] * pass_factor.ravel()[exits]))
    return RiverRouting(
        load=load.reshape(graph.shape),
        retained=retained.reshape(graph.shape),
        exported=exported,
    )


def pick_peaks(values: FloatArray, top_n: int, separation_cells: int) -> list[tuple[int, int]]:
    """Cells of the ``top_n`` largest positive values, each at least ``separation_cells`` from the others.

    Greedy non-maximum suppression: take the largest value, blank its neighbourhood, repeat. Equal
    values are taken in decreasing flat index (the reverse of a stable ascending sort).

    Only the largest ``top_n x (2 x separation_cells + 1)^2`` positive cells (and any equal to the
    smallest of them) are sorted: each pick blanks at most ``(2 x separation_cells + 1)^2`` cells, so
    they hold ``top_n`` peaks unless fewer positive cells remain; the search widens only if not.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()  # only finite positive values are read
    rows, cols = values.shape
    positive = np.flatnonzero((flat > 0) & (flat < np.inf))  # the search stops at the first value <= 0
    budget = max(top_n, 1) * (2 * separation_cells + 1) ** 2
    while True:
        if budget < positive.size:
            at_positive = flat[positive]
            at_positive.partition(positive.size - budget)  # in place: no second copy
            kth = at_positive[positive.size - budget]
            del at_positive
            candidates = positive[flat[positive] >= kth]
        else:
            candidates = positive
        order = candidates[np.argsort(flat[candidates], kind="stable")[::-1]]
        picked: list[tuple[int, int]] = []
        taken = np.zeros((rows, cols), dtype=bool)
        for index in order.tolist():
            if len(picked) >= top_n:
                break
            r, c = divmod(index, cols)
            if taken[r, c]:
                continue
            picked.append((r, c))
            r0, r1 = max(0, r - separation_cells), min(rows, r + separation_cells + 1)
            c0, c1 = max(0, c - separation_cells), min(cols, c + separation_cells + 1)
            taken[r0:r1, c0:c1] = True
        if len(picked) >= top_n or candidates.size == positive.size:
            return picked
        budget *= 4


def dominant_driver(values: dict[str, float], reference: dict[str, float]) -> str:
    """Name the factor that lifts a cell most above the area's typical value (largest log ratio)."""
    best, best_score = "", -np.inf
    for name, value in values.items():
        ref = reference[name]
        if ref <= 0 or value <= 0:
            continue
        score = float(np.log(value / ref))
        if score > best_score:
            best, best_score = name, score
    return best or "none"


def leakage_hotspot(
    grid: GridSpec,
    rank: int,
    cell: tuple[int, int],
    value: float,
    *,
    population: float,
    collection_rate: float,
    p_land: float,
    observed_extra: float,
    reference: dict[str, float],
) -> Hotspot:
    """A ranked leakage hotspot with its drivers (the factors' values at the cell) and the dominant one.

    ``reference`` holds the area's typical value of each driver: ``population``, ``poor collection``
    (``1 - collection_rate``), ``near a river`` (``P_land``) and ``observed litter`` (kg/yr).
    """
    row, col = cell
    lon, lat = cell_lonlat(grid, np.array([row]), np.array([col]))
    factors = {
        "population": population,
        "poor collection": 1.0 - collection_rate,
        "near a river": p_land,
        "observed litter": observed_extra + 1e-12,
    }
    return Hotspot(
        kind="leakage",
        rank=rank,
        row=row,
        col=col,
        lon=float(lon[0]),
        lat=float(lat[0]),
        value=value,
        unit="kg/yr",
        driver=dominant_driver(factors, reference),
        drivers={
            "population": population,
            "collection_rate": collection_rate,
            "p_land": p_land,
            "observed_extra_kg_yr": observed_extra,
        },
    )


def accumulation_hotspot(
    grid: GridSpec,
    rank: int,
    cell: tuple[int, int],
    value: float,
    *,
    load: float,
    pass_factor: float,
    slope: float,
    barrier: str | None,
    low_slope: float,
) -> Hotspot:
    """A ranked accumulation hotspot: driven by its barrier's kind, else by a low slope or the channel."""
    row, col = cell
    lon, lat = cell_lonlat(grid, np.array([row]), np.array([col]))
    return Hotspot(
        kind="accumulation",
        rank=rank,
        row=row,
        col=col,
        lon=float(lon[0]),
        lat=float(lat[0]),
        value=value,
        unit="kg/yr",
        driver=barrier or ("low-slope reach" if slope < low_slope else "in-channel retention"),
        drivers={"load_kg_yr": load, "pass_factor": pass_factor},
    )
