"""Sweeps along a flow graph stored tile by tile: accumulation and downstream products.

Both take two passes over the tiles and one small solve in memory:

1. Each tile, alone, sweeps its own part of the flow graph
(:func:`plastic_hotspots.maps.kernels.windows.local_graph`)
   and reports on its *ring* (its outer rows and columns): for accumulation, where flow entering each
   ring cell leaves the tile and what the tile itself sends out through each exit; for a downstream
   product, the product from each ring cell up to a stop cell or through its exit.
2. The ring cells of all tiles (``4 x rows x cols / tile`` of them, numbered by
   :meth:`~plastic_hotspots.maps.large.store.TileLayout.ring_offsets`) form a small flow graph, solved in
   memory with
   :mod:`plastic_hotspots.maps.science.terrain`'s sweeps.
3. Each tile sweeps again with what the others send it (inflows on its ring; the products waiting
   beyond its exits) and writes its part of the result.

With a transfer (each cell passing on a fraction of what it holds, as river routing with retention
does), a ring cell also reports the fraction of what enters it that reaches the next ring cell, and
the ring graph is swept with those fractions. Flow crosses tile edges any number of times without
extra passes. Sums of cell counts are exact;
other sums and products equal the whole-grid sweep to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels.windows import local_graph, reach_exits
from plastic_hotspots.maps.large.mapper import LazyTasks, Mapper, serial_map
from plastic_hotspots.maps.large.store import TiledRaster, TileLayout
from plastic_hotspots.maps.science import terrain

__all__ = ["accumulate_tiled", "downstream_product_tiled"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _ring_local(layout: TileLayout, ti: int, tj: int) -> IntArray:
    """Indices, inside the tile, of its ring cells (in ring order)."""
    r0, _, c0, c1 = layout.window(ti, tj)
    rr, cc = np.divmod(layout.ring_indices(ti, tj), layout.cols)
    return np.asarray((rr - r0) * (c1 - c0) + (cc - c0), dtype=np.int64)


def _to_grid(local: IntArray, window: tuple[int, int, int, int], cols: int) -> IntArray:
    r0, _, c0, c1 = window
    rr, cc = np.divmod(local, c1 - c0)
    return np.asarray((rr + r0) * cols + (cc + c0), dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Accumulation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class AccumulateTask:
    """One tile of a tiled accumulation; phase 2 (``out`` given) adds ``inflow`` on the ring cells."""

    down: TiledRaster
    weights: TiledRaster
    count_valid: bool
    ti: int
    tj: int
    out: TiledRaster | None = None
    inflow: FloatArray | None = None
    transfer: TiledRaster | None = None


@dataclass(frozen=True, slots=True, eq=False)
class RingFlow:
    """Phase 1 of a tiled accumulation for one tile.

    Attributes:
        succ: For each ring cell (ring order), the ring id of the cell where flow entering it arrives
            after leaving the tile, -1 if it ends inside the grid first.
        exit_to: Ring ids of the cells (in other tiles) that the tile's exit cells drain into.
        exit_out: What the tile alone sends through each exit.
        gain: With a transfer, for each ring cell the fraction of what enters it that reaches
            ``succ`` (the product of the transfers from the cell to its exit, both included).
    """

    succ: IntArray
    exit_to: IntArray
    exit_out: FloatArray
    gain: FloatArray | None = None


def accumulate_tile(task: AccumulateTask) -> RingFlow | None:
    """Phase 1 (no ``out``): the tile's :class:`RingFlow`. Phase 2: accumulate with inflows into ``out``."""
    lay = task.down.layout
    window = lay.window(task.ti, task.tj)
    down = task.down.read(task.ti, task.tj).ravel()
    local, exits = local_graph(down, window, lay.cols)
    levels = terrain.flow_levels(local)
    values = task.weights.read(task.ti, task.tj)
    weights = (
        np.isfinite(values).astype(np.float64).ravel()
        if task.count_valid
        else np.asarray(values, dtype=np.float64).ravel()
    )
    transfer = (
        None if task.transfer is None else task.transfer.read(task.ti, task.tj).astype(np.float64).ravel()
    )
    ring_local = _ring_local(lay, task.ti, task.tj)
    if task.out is not None:
        if task.inflow is not None:
            weights[ring_local] += task.inflow
        acc = terrain.accumulate(local, levels, weights, transfer)
        task.out.write(task.ti, task.tj, acc.reshape(window[1] - window[0], window[3] - window[2]))
        return None
    acc = terrain.accumulate(local, levels, weights, transfer)
    gain: FloatArray | None = None
    if transfer is None:
        link = terrain.first_downstream(local, levels, exits)[ring_local]
    else:
        through, first = reach_exits(local, levels, exits, transfer, np.zeros(local.size, dtype=np.bool_))
        link, gain = first[ring_local], through[ring_local]
    offsets = lay.ring_offsets()
    succ = np.full(ring_local.size, -1, dtype=np.int64)
    linked = link >= 0
    succ[linked] = lay.ring_ids(down[link[linked]], offsets)
    exit_local = np.flatnonzero(exits)
    sent = acc[exit_local] if transfer is None else acc[exit_local] * transfer[exit_local]
    return RingFlow(succ=succ, exit_to=lay.ring_ids(down[exit_local], offsets), exit_out=sent, gain=gain)


def accumulate_tiled(
    down: TiledRaster,
    weights: TiledRaster,
    out_path: Path,
    *,
    count_valid: bool = False,
    transfer: TiledRaster | None = None,
    mapper: Mapper | None = None,
) -> TiledRaster:
    """Tiled accumulation: ``acc[c] = w[c] + sum of acc[u] x transfer[u] upstream``.

    :func:`plastic_hotspots.maps.science.terrain.accumulate` tile by tile.

    Without ``transfer`` (1 everywhere) sums of whole numbers are exact: cell counts are bit-identical
    to the whole-grid sweep. Other sums, and sums with a transfer, equal it to rounding.

    Args:
        down: ``down`` as a tiled raster of flat indices.
        weights: What each cell contributes (same layout); with ``count_valid``, 1 where its value is
            finite and 0 elsewhere (the upstream area in cells of a DEM).
        out_path: File of the result.
        count_valid: See ``weights``.
        transfer: Fraction of its accumulated value each cell passes downstream (same layout);
            1 everywhere if omitted.
        mapper: Runs the tile tasks (default :func:`~plastic_hotspots.maps.large.mapper.serial_map`).

    Returns:
        The accumulation, float64, tiled like ``down``.

    Raises:
        ValueError: If the rasters are not tiled alike.
    """
    lay = down.layout
    for name, raster in (("weights", weights), ("transfer", transfer)):
        if raster is not None and raster.layout != lay:
            raise ValueError(f"{name} must be tiled like down ({lay}), got {raster.layout}")
    run = mapper or serial_map
    tiles = list(lay.tiles())
    offsets = lay.ring_offsets()
    succ = np.full(int(offsets[-1]), -1, dtype=np.int64)
    gain = None if transfer is None else np.ones(succ.size, dtype=np.float64)
    sent: dict[int, tuple[IntArray, FloatArray]] = {}
    phase1 = LazyTasks(
        len(tiles), lambda i: AccumulateTask(down, weights, count_valid, *tiles[i], transfer=transfer)
    )
    for index, flow in run(accumulate_tile, phase1):
        if flow is not None:
            succ[offsets[index] : offsets[index + 1]] = flow.succ
            if gain is not None and flow.gain is not None:
                gain[offsets[index] : offsets[index + 1]] = flow.gain
            sent[index] = (flow.exit_to, flow.exit_out)
    seed = np.zeros(succ.size, dtype=np.float64)
    for index in sorted(sent):  # in tile order, whatever order the tiles came back in
        exit_to, exit_out = sent.pop(index)
        np.add.at(seed, exit_to, exit_out)
    inflow = terrain.accumulate(succ, terrain.flow_levels(succ), seed, gain)
    del succ, seed, gain
    result = TiledRaster.create(out_path, lay, np.float64)

    def phase2(i: int) -> AccumulateTask:
        ring = inflow[offsets[i] : offsets[i + 1]]
        return AccumulateTask(
            down, weights, count_valid, *tiles[i], out=result, inflow=ring, transfer=transfer
        )

    for _ in run(accumulate_tile, LazyTasks(len(tiles), phase2)):
        pass
    return result


# --------------------------------------------------------------------------------------------------
# Downstream products
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ProductTask:
    """One tile of a tiled downstream product; phase 2 gets ``p`` at the ring ids its exits drain to."""

    down: TiledRaster
    factor: TiledRaster
    stop: TiledRaster
    ti: int
    tj: int
    out: TiledRaster | None = None
    targets: IntArray | None = None
    target_p: FloatArray | None = None


@dataclass(frozen=True, slots=True, eq=False)
class RingProduct:
    """Phase 1 of a tiled downstream product for one tile's ring cells (ring order).

    Attributes:
        q: Product of the factors from each ring cell to a stop cell, or through its exit cell.
        succ: Ring id of the cell the path continues at in another tile, -1 if ``q`` is final.
    """

    q: FloatArray
    succ: IntArray


def product_tile(task: ProductTask) -> RingProduct | None:
    """Phase 1 (no ``out``): the tile's :class:`RingProduct`. Phase 2: the product into ``out``."""
    lay = task.down.layout
    window = lay.window(task.ti, task.tj)
    down = task.down.read(task.ti, task.tj).ravel()
    local, exits = local_graph(down, window, lay.cols)
    levels = terrain.flow_levels(local)
    factor = task.factor.read(task.ti, task.tj).astype(np.float64).ravel()
    stop = task.stop.read(task.ti, task.tj).astype(np.bool_).ravel()
    q, first = reach_exits(local, levels, exits, factor, stop)
    on = first >= 0
    offsets = lay.ring_offsets()
    if task.out is None:
        ring_local = _ring_local(lay, task.ti, task.tj)
        succ = np.full(ring_local.size, -1, dtype=np.int64)
        ring_on = on[ring_local]
        succ[ring_on] = lay.ring_ids(down[first[ring_local][ring_on]], offsets)
        return RingProduct(q=q[ring_local], succ=succ)
    p = q.copy()
    if task.targets is not None and task.target_p is not None and on.any():
        target = lay.ring_ids(down[first[on]], offsets)
        p[on] = q[on] * task.target_p[np.searchsorted(task.targets, target)]
    task.out.write(task.ti, task.tj, p.reshape(window[1] - window[0], window[3] - window[2]))
    return None


def downstream_product_tiled(
    down: TiledRaster,
    factor: TiledRaster,
    stop: TiledRaster,
    out_path: Path,
    *,
    mapper: Mapper | None = None,
) -> TiledRaster:
    """Tiled downstream product: ``p = 1`` on stop cells, else ``factor * p[down]``.

    :func:`plastic_hotspots.maps.science.terrain.downstream_product` tile by tile.

    Paths that leave the grid (or enter nodata) before a stop cell give 0. Equal to the whole-grid
    product to rounding (the factors are multiplied in another grouping).

    Args:
        down: ``down`` as a tiled raster of flat indices.
        factor: Per-cell factor (same layout).
        stop: Stop cells (same layout; non-zero is a stop).
        out_path: File of the result.
        mapper: Runs the tile tasks (default :func:`~plastic_hotspots.maps.large.mapper.serial_map`).

    Returns:
        ``p``, float64, tiled like ``down``.

    Raises:
        ValueError: If the rasters are not tiled alike.
    """
    lay = down.layout
    for name, raster in (("factor", factor), ("stop", stop)):
        if raster.layout != lay:
            raise ValueError(f"{name} must be tiled like down ({lay}), got {raster.layout}")
    run = mapper or serial_map
    tiles = list(lay.tiles())
    offsets = lay.ring_offsets()
    total = int(offsets[-1])
    q = np.zeros(total, dtype=np.float64)
    succ = np.full(total, -1, dtype=np.int64)
    phase1 = LazyTasks(len(tiles), lambda i: ProductTask(down, factor, stop, *tiles[i]))
    for index, part in run(product_tile, phase1):
        if part is not None:
            q[offsets[index] : offsets[index + 1]] = part.q
            succ[offsets[index] : offsets[index + 1]] = part.succ
    p = np.zeros(total + 1, dtype=np.float64)
    slot = np.where(succ >= 0, succ, total)
    for level in reversed(terrain.flow_levels(succ)):
        p[level] = np.where(succ[level] >= 0, q[level] * p[slot[level]], q[level])
    del q, slot
    result = TiledRaster.create(out_path, lay, np.float64)

    def phase2(i: int) -> ProductTask:
        ring = succ[offsets[i] : offsets[i + 1]]
        targets = np.unique(ring[ring >= 0])
        return ProductTask(down, factor, stop, *tiles[i], out=result, targets=targets, target_p=p[targets])

    for _ in run(product_tile, LazyTasks(len(tiles), phase2)):
        pass
    return result
