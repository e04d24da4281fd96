"""River routing with retention at barriers, tile by tile: the large mode's river routing.

Equal to :func:`plastic_hotspots.maps.science.model.route_rivers` on the whole grid.

Three tiled stages, each equal to the whole-grid one on the same flow graph:

1. **Stream order** (:func:`strahler_tiled`): :func:`plastic_hotspots.maps.science.terrain.strahler_order` is
an upstream
   max/count rule, so it is relaxed over the tiles like the depression fill
   (:mod:`plastic_hotspots.maps.large.routing`), from
   below: every tile is solved with the orders of the neighbours' edge cells that drain into it (0
   where not known yet), and solved again when those change. A cell's order only grows with its
   inputs' orders and the graph has no cycle, so this stops, at the whole-grid orders (integers:
   exact). A river that crosses a tile edge ``k`` times costs up to ``k`` more solves of the two tiles.
2. **Pass factors** (:func:`river_layers_tiled`):
:func:`plastic_hotspots.maps.science.model.river_pass_factor` on each tile
   (order, step length, slope with the tile's halo of the conditioned DEM, barriers snapped as the
   pipeline snaps them): bit for bit the whole-grid factors.
3. **Loads** (:func:`route_rivers_tiled`): :func:`plastic_hotspots.maps.science.model.route_rivers` sends each
cell's leakage
   to the first river cell on its path, then moves it down the rivers, each river cell passing on
   ``pass_factor`` of its load. That is two tiled accumulations
   (:func:`~plastic_hotspots.maps.large.sweeps.accumulate_tiled` with a transfer): over land (transfer 0 on
   river
   cells, 1 elsewhere), whose value on a river cell is its inflow, then along the rivers (transfer
   ``pass_factor`` on river cells, 0 elsewhere). Loads, retention and export equal the whole-grid
   ones to rounding (the sums are grouped differently).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels.windows import local_graph
from plastic_hotspots.maps.large.mapper import LazyTasks, Mapper, relax_tiles, serial_map
from plastic_hotspots.maps.large.store import Border, Seams, TiledRaster, TileLayout
from plastic_hotspots.maps.large.sweeps import accumulate_tiled
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science import model, terrain
from plastic_hotspots.records import GridSpec

__all__ = [
    "RiverRasters",
    "river_layers_tiled",
    "route_rivers_tiled",
    "strahler_local",
    "strahler_tiled",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------------------
# Stream order
# --------------------------------------------------------------------------------------------------


def strahler_local(
    local_down: IntArray,
    levels: list[IntArray],
    river: BoolArray,
    inflow_top: IntArray | None = None,
    inflow_count: IntArray | None = None,
) -> IntArray:
    """Strahler order of one tile, with what flows in from outside it.

    :func:`plastic_hotspots.maps.science.terrain.strahler_order` on the tile.

    Args:
        local_down: The tile's flow graph (see :func:`plastic_hotspots.maps.kernels.windows.local_graph`).
        levels: ``flow_levels(local_down)``.
        river: River cells of the tile.
        inflow_top: Per cell, the highest order among the river cells outside the tile that drain
            into it (0: none).
        inflow_count: Per cell, how many of them have that order.

    Returns:
        int64 orders, 0 off the rivers.
    """
    n = local_down.size
    top = np.zeros(n, dtype=np.int64) if inflow_top is None else inflow_top.astype(np.int64, copy=True)
    count = np.zeros(n, dtype=np.int64) if inflow_count is None else inflow_count.astype(np.int64, copy=True)
    order = np.zeros(n, dtype=np.int64)
    for level in levels:
        cells = level[river[level]]
        if not cells.size:
            continue
        k = top[cells]
        order[cells] = np.where(k == 0, 1, np.where(count[cells] >= 2, k + 1, k))
        target = local_down[cells]
        src = cells[target >= 0]
        target = target[target >= 0]
        keep = river[target]
        src, target = src[keep], target[keep]
        if not src.size:
            continue
        sent = order[src]
        before = top[target]
        np.maximum.at(top, target, sent)
        count[target[top[target] > before]] = 0  # a higher order arrived: the old count is void
        np.add.at(count, target, (sent == top[target]).astype(np.int64))
    return order


def _entering(
    order_halo: Border, down_halo: Border, window: tuple[int, int, int, int], cols: int
) -> tuple[IntArray, IntArray]:
    """Halo cells of known order (> 0) that drain into the tile: ``(local target, order)``, sorted."""
    r0, r1, c0, c1 = window
    h, w = r1 - r0, c1 - c0
    orders = order_halo.pad(np.zeros((h, w), dtype=np.int64))
    downs = down_halo.pad(np.full((h, w), -1, dtype=np.int64))
    ring = np.zeros(orders.shape, dtype=np.bool_)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    pick = ring & (orders > 0) & (downs >= 0)
    o, g = orders[pick].astype(np.int64), downs[pick].astype(np.int64)
    gr, gc = np.divmod(g, cols)
    inside = (gr >= r0) & (gr < r1) & (gc >= c0) & (gc < c1)
    target = (gr[inside] - r0) * w + (gc[inside] - c0)
    o = o[inside]
    sort = np.lexsort((o, target))
    return target[sort].astype(np.int64), o[sort]


@dataclass(frozen=True, slots=True, eq=False)
class StrahlerTask:
    """Stream order of one tile into ``out``, given its neighbours' edge orders and edge ``down``."""

    down: TiledRaster
    rivers: TiledRaster
    out: TiledRaster
    ti: int
    tj: int
    order_halo: Border
    down_halo: Border


def strahler_tile(task: StrahlerTask) -> Border:
    """Run a :class:`StrahlerTask`; returns the edges of the tile's orders."""
    lay = task.down.layout
    window = lay.window(task.ti, task.tj)
    h, w = window[1] - window[0], window[3] - window[2]
    river = task.rivers.read(task.ti, task.tj).astype(np.bool_).ravel()
    if not river.any():
        nothing = np.zeros((h, w), dtype=np.int32)
        task.out.write(task.ti, task.tj, nothing)
        return Border.of(nothing)
    down = task.down.read(task.ti, task.tj).ravel()
    local, _ = local_graph(down, window, lay.cols)
    target, sent = _entering(task.order_halo, task.down_halo, window, lay.cols)
    keep = river[target]
    target, sent = target[keep], sent[keep]
    top = np.zeros(h * w, dtype=np.int64)
    np.maximum.at(top, target, sent)
    count = np.zeros(h * w, dtype=np.int64)
    np.add.at(count, target, (sent == top[target]).astype(np.int64))
    order = strahler_local(local, terrain.flow_levels(local), river, top, count)
    orders = order.reshape(h, w).astype(np.int32)
    task.out.write(task.ti, task.tj, orders)
    return Border.of(orders)


def strahler_tiled(
    down: TiledRaster, rivers: TiledRaster, out_path: Path, *, mapper: Mapper | None = None
) -> tuple[TiledRaster, int]:
    """Tiled Strahler order (see the module docstring); equal to the whole-grid one exactly.

    :func:`plastic_hotspots.maps.science.terrain.strahler_order` tile by tile.

    Args:
        down: ``down`` as a tiled raster of flat indices.
        rivers: River cells (same layout; non-zero is a river).
        out_path: File of the result (int32, 0 off the rivers).
        mapper: Runs the tile tasks (default :func:`~plastic_hotspots.maps.large.mapper.serial_map`).

    Returns:
        The orders and the number of tile solves.

    Raises:
        ValueError: If the rasters are not tiled alike.
    """
    lay = down.layout
    if rivers.layout != lay:
        raise ValueError(f"rivers must be tiled like down ({lay}), got {rivers.layout}")
    run = mapper or serial_map
    down_seams = Seams(lay, np.int64, -1)
    for ti, tj in lay.tiles():
        down_seams.store(ti, tj, Border.of(down.read(ti, tj)))
    order_seams = Seams(lay, np.int32, 0)
    out = TiledRaster.create(out_path, lay, np.int32)
    used: dict[tuple[int, int], bytes] = {}

    def inputs(ti: int, tj: int) -> tuple[Border, Border, bytes]:
        order_halo = order_seams.halo(ti, tj, 0)
        down_halo = down_seams.halo(ti, tj, -1)
        target, sent = _entering(order_halo, down_halo, lay.window(ti, tj), lay.cols)
        digest = hashlib.blake2b(target.tobytes() + b"|" + sent.tobytes(), digest_size=16).digest()
        return order_halo, down_halo, digest

    def make_task(ti: int, tj: int, _hint: float | None) -> StrahlerTask:
        order_halo, down_halo, digest = inputs(ti, tj)
        used[(ti, tj)] = digest
        return StrahlerTask(down, rivers, out, ti, tj, order_halo, down_halo)

    def check(ti: int, tj: int) -> float | None:
        return None if inputs(ti, tj)[2] == used.get((ti, tj)) else 0.0

    solves = relax_tiles(lay, run, strahler_tile, make_task, check, order_seams.store)
    return out, solves


# --------------------------------------------------------------------------------------------------
# Barriers
# --------------------------------------------------------------------------------------------------


def _barriers_by_tile(
    layout: TileLayout, cells: Sequence[int], factors: Sequence[float]
) -> dict[tuple[int, int], tuple[tuple[int, float], ...]]:
    """Each tile's snapped barriers as ``(index in the tile, pass factor)``, in the barriers' order."""
    out: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for cell, factor in zip(cells, factors, strict=True):
        if cell < 0:
            continue
        r, c = divmod(cell, layout.cols)
        ti, tj = r // layout.tile, c // layout.tile
        r0, _, c0, c1 = layout.window(ti, tj)
        out.setdefault((ti, tj), []).append(((r - r0) * (c1 - c0) + (c - c0), float(factor)))
    return {key: tuple(value) for key, value in out.items()}


# --------------------------------------------------------------------------------------------------
# Pass factors, leakage and transfers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiverRasters:
    """The tiled rasters of the large mode's river routing.

    Attributes:
        order: Strahler order (int32, 0 off the rivers).
        pass_factor: :func:`plastic_hotspots.maps.science.model.river_pass_factor` (1 off the rivers).
        leakage: The leakage index, 0 outside the basin.
        load: kg/yr carried through each river cell (0 elsewhere).
        retained: kg/yr retained in each river cell (0 elsewhere).
        order_solves: Tile solves of the stream order's relaxation.
    """

    order: TiledRaster
    pass_factor: TiledRaster
    leakage: TiledRaster
    load: TiledRaster
    retained: TiledRaster
    order_solves: int


@dataclass(frozen=True, slots=True, eq=False)
class RiverPrepTask:
    """Per-tile pass factors, leakage and the two transfers of :func:`route_rivers_tiled`."""

    ti: int
    tj: int
    cell_size: float
    params: HotspotParams
    slope: TiledRaster
    step: TiledRaster
    rivers: TiledRaster
    order: TiledRaster
    source: TiledRaster
    p_land: TiledRaster
    basin: TiledRaster
    barriers: tuple[tuple[int, float], ...]
    pass_out: TiledRaster
    leakage_out: TiledRaster
    land_out: TiledRaster
    river_out: TiledRaster


def river_prep_tile(task: RiverPrepTask) -> None:
    """Run a :class:`RiverPrepTask`."""
    ti, tj = task.ti, task.tj
    rivers = task.rivers.read(ti, tj).astype(np.bool_)
    shape = (int(rivers.shape[0]), int(rivers.shape[1]))
    barrier_pass = np.ones(shape)
    flat = barrier_pass.ravel()
    for index, factor in task.barriers:
        flat[index] *= factor
    slope = task.slope.read(ti, tj)
    # The model's formula on the tile: it reads only the graph's shape, step lengths and slope.
    graph = model.FlowGraph(
        shape=shape,
        cell_size=task.cell_size,
        filled=slope,
        down=np.full(rivers.size, -1, dtype=np.int64),
        levels=[],
        step=task.step.read(ti, tj).ravel(),
        slope=slope,
        accumulation=slope,
        valid=rivers,
    )
    order = task.order.read(ti, tj).astype(np.int64)
    passf = model.river_pass_factor(graph, rivers, order, barrier_pass, task.params)
    task.pass_out.write(ti, tj, passf)
    basin = task.basin.read(ti, tj).astype(np.bool_)
    leakage = np.where(basin, task.source.read(ti, tj) * task.p_land.read(ti, tj), 0.0)
    task.leakage_out.write(ti, tj, leakage)
    task.land_out.write(ti, tj, np.where(rivers, 0.0, 1.0))
    task.river_out.write(ti, tj, np.where(rivers, passf, 0.0))


def river_layers_tiled(
    grid: GridSpec,
    params: HotspotParams,
    tiles: dict[str, TiledRaster],
    barrier_cells: Sequence[int],
    barrier_factors: Sequence[float],
    work: Path,
    *,
    mapper: Mapper | None = None,
) -> tuple[dict[str, TiledRaster], int]:
    """Stream order, pass factors, leakage and transfers, tile by tile.

    Args:
        grid: The grid.
        params: The model's parameters.
        tiles: The tiled inputs, by name: ``down``, ``rivers``, ``slope``, ``step``, ``source``,
            ``p_land``, ``basin`` (1 in the basin).
        barrier_cells: Snapped cell of each barrier (-1: not on a river).
        barrier_factors: Pass factor of each barrier.
        work: Folder of the tiled outputs.
        mapper: Runs the tile tasks.

    Returns:
        The tiled ``order``, ``pass_factor``, ``leakage``, ``land_transfer`` and ``river_transfer``,
        and the tile solves of the stream order.
    """
    run = mapper or serial_map
    lay = tiles["down"].layout
    order, solves = strahler_tiled(tiles["down"], tiles["rivers"], work / "order.tiles", mapper=run)
    out = {
        name: TiledRaster.create(work / f"{name}.tiles", lay, np.float64)
        for name in ("pass_factor", "leakage", "land_transfer", "river_transfer")
    }
    by_tile = _barriers_by_tile(lay, barrier_cells, barrier_factors)
    every = list(lay.tiles())

    def task(i: int) -> RiverPrepTask:
        ti, tj = every[i]
        return RiverPrepTask(
            ti,
            tj,
            grid.cell_size,
            params,
            tiles["slope"],
            tiles["step"],
            tiles["rivers"],
            order,
            tiles["source"],
            tiles["p_land"],
            tiles["basin"],
            by_tile.get((ti, tj), ()),
            out["pass_factor"],
            out["leakage"],
            out["land_transfer"],
            out["river_transfer"],
        )

    for _ in run(river_prep_tile, LazyTasks(len(every), task)):
        pass
    return {"order": order, **out}, solves


# --------------------------------------------------------------------------------------------------
# Loads
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class LoadTask:
    """Load and retention of one tile from the river accumulation; returns the tile's export."""

    ti: int
    tj: int
    down: TiledRaster
    rivers: TiledRaster
    carried: TiledRaster
    pass_factor: TiledRaster
    load_out: TiledRaster
    retained_out: TiledRaster


def load_tile(task: LoadTask) -> float:
    """Run a :class:`LoadTask`: ``load``, ``retained`` and the kg/yr leaving the network from this tile."""
    ti, tj = task.ti, task.tj
    rivers = task.rivers.read(ti, tj).astype(np.bool_)
    passf = task.pass_factor.read(ti, tj)
    load = np.where(rivers, task.carried.read(ti, tj), 0.0)
    retained = np.where(rivers, load * (1.0 - passf), 0.0)
    task.load_out.write(ti, tj, load)
    task.retained_out.write(ti, tj, retained)
    exits = _network_exits(task.down.read(ti, tj), rivers, task.rivers, ti, tj)
    return float(np.sum(load[exits] * passf[exits]))


def _network_exits(
    down: npt.NDArray[np.int64], rivers: npt.NDArray[np.bool_], every: TiledRaster, ti: int, tj: int
) -> npt.NDArray[np.bool_]:
    """The tile's river cells whose downstream cell is not a river cell (in this tile or the next).

    :func:`plastic_hotspots.maps.science.model.network_exits` on one tile: ``down`` holds flat grid
    indices, and a downstream cell is at most one cell outside the tile.
    """
    lay = every.layout
    r0, r1, c0, c1 = lay.window(ti, tj)
    near = every.read_window(r0 - 1, r1 + 1, c0 - 1, c1 + 1).astype(np.bool_)  # clipped to the grid
    exits = rivers & (down < 0)
    inner = rivers & (down >= 0)
    t_row, t_col = np.divmod(down[inner], lay.cols)
    exits[inner] = ~near[t_row - max(r0 - 1, 0), t_col - max(c0 - 1, 0)]
    return exits


def route_rivers_tiled(
    down: TiledRaster,
    rivers: TiledRaster,
    layers: dict[str, TiledRaster],
    work: Path,
    *,
    mapper: Mapper | None = None,
) -> tuple[TiledRaster, TiledRaster, float]:
    """Tiled :func:`plastic_hotspots.maps.science.model.route_rivers` (see the module docstring).

    Args:
        down: ``down`` as a tiled raster of flat indices.
        rivers: River cells.
        layers: From :func:`river_layers_tiled`: ``leakage``, ``land_transfer``,
            ``river_transfer``, ``pass_factor``.
        work: Folder of the tiled outputs.
        mapper: Runs the tile tasks.

    Returns:
        ``(load, retained, exported)``: kg/yr carried and retained per river cell, and kg/yr leaving
        the grid along rivers (the export, summed in tile order).
    """
    run = mapper or serial_map
    lay = down.layout
    entering = accumulate_tiled(
        down, layers["leakage"], work / "river_inflow.tiles", transfer=layers["land_transfer"], mapper=run
    )
    carried = accumulate_tiled(
        down, entering, work / "river_carried.tiles", transfer=layers["river_transfer"], mapper=run
    )
    load = TiledRaster.create(work / "river_load.tiles", lay, np.float64)
    retained = TiledRaster.create(work / "river_retained.tiles", lay, np.float64)
    every = list(lay.tiles())

    def task(i: int) -> LoadTask:
        ti, tj = every[i]
        return LoadTask(ti, tj, down, rivers, carried, layers["pass_factor"], load, retained)

    exported = np.zeros(len(every))
    for index, amount in run(load_tile, LazyTasks(len(every), task)):
        exported[index] = amount
    return load, retained, float(exported.sum())
