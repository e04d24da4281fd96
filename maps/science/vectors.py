"""The vector layers of a result: ranked hotspots, barriers and river lines as frames."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import Point

from plastic_hotspots.maps.inputs.vectors import Barriers
from plastic_hotspots.records import GridSpec, Hotspot


def hotspot_frame(spots: list[Hotspot]) -> gpd.GeoDataFrame:
    """Ranked hotspots of one kind as points (EPSG:4326): rank, value, unit, driver, cell, drivers."""
    frame = pd.DataFrame(
        [
            {
                "rank": h.rank,
                "value": h.value,
                "unit": h.unit,
                "driver": h.driver,
                "row": h.row,
                "col": h.col,
                **h.drivers,
            }
            for h in spots
        ]
    )
    return gpd.GeoDataFrame(frame, geometry=[Point(h.lon, h.lat) for h in spots], crs="EPSG:4326")


def barrier_frame(barriers: Barriers, cells: list[int], retained: list[float], crs: str) -> gpd.GeoDataFrame:
    """The barriers (in ``crs``) with their pass factor, whether they sit on a river, and what they retain."""
    return gpd.GeoDataFrame(
        {
            "name": barriers.name,
            "kind": barriers.kind,
            "pass_factor": barriers.pass_factor,
            "on_river": [c >= 0 for c in cells],
            "retained_kg_yr": retained,
        },
        geometry=gpd.points_from_xy(barriers.x, barriers.y),
        crs=crs,
    )


def river_chains(
    seg: npt.NDArray[np.int64], dst: npt.NDArray[np.int64], orders: npt.NDArray[np.integer], grid: GridSpec
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.integer]]:
    """River segments (cell ``seg[i]`` to its downstream cell ``dst[i]``, flat indices) joined into lines.

    A line runs down one order from a source or a confluence to the next confluence, or to where the
    order changes or its next segment is not among those given (the river leaves the grid, or the tile).
    A segment goes on into the next one when that starts where it ends, has its order, and is the only
    segment of that order arriving there.

    Args:
        seg: Sorted flat indices of the cells segments start from.
        dst: Flat index of each segment's end cell.
        orders: Stream order of each segment (below 32).
        grid: The grid the indices are on.

    Returns:
        ``(x, y, line, line_order)``: the lines' points (cell centres, grid CRS) line after line from
        the top down, the line of each point, and each line's order.
    """
    # How many segments of their own order end in each segment's start cell.
    key = dst * 32 + orders
    uniq, counts = np.unique(key, return_counts=True)
    own = seg * 32 + orders
    pos = np.minimum(np.searchsorted(uniq, own), uniq.size - 1)
    inflow = np.where(uniq[pos] == own, counts[pos], 0)
    found = np.minimum(np.searchsorted(seg, dst), seg.size - 1)
    nxt = np.where(seg[found] == dst, found, -1)
    nxt = np.where((nxt >= 0) & (orders[np.maximum(nxt, 0)] == orders), nxt, -1)
    nxt = np.where((nxt >= 0) & (inflow[np.maximum(nxt, 0)] == 1), nxt, -1)
    # Pointer jumping: each segment's last segment along its line and how many steps away it is.
    last = np.where(nxt >= 0, nxt, np.arange(seg.size))
    steps = (nxt >= 0).astype(np.int64)
    while True:
        further = last[last]
        moved = further != last
        if not moved.any():
            break
        steps = steps + np.where(moved, steps[last], 0)
        last = further
    # Order the segments line by line, from the top of each line down.
    rank = np.lexsort((-steps, last))
    starts = np.flatnonzero(np.r_[True, last[rank][1:] != last[rank][:-1]])
    line_of = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, rank.size]))
    ends = np.r_[starts[1:], rank.size] - 1
    # Points: each segment's start cell, and the end cell of each line's last segment.
    cells = np.concatenate([seg[rank], dst[rank[ends]]])
    point_line = np.concatenate([line_of, np.arange(starts.size)])
    point_rank = np.concatenate([np.arange(rank.size), ends + 0.5])
    arrange = np.lexsort((point_rank, point_line))
    cells, point_line = cells[arrange], point_line[arrange]
    r, c = np.divmod(cells, grid.width)
    x = grid.west + (c + 0.5) * grid.cell_size
    y = grid.north - (r + 0.5) * grid.cell_size
    return x, y, point_line, orders[rank[starts]]


def river_lines_frame(
    lines: npt.NDArray[np.object_], line_order: npt.NDArray[np.integer], crs: str
) -> gpd.GeoDataFrame:
    """The ``rivers`` layer: one multi-line per stream order."""
    rows = [
        {"order": int(k), "geometry": shapely.multilinestrings(lines[line_order == k])}
        for k in sorted(set(line_order.tolist()))
    ]
    return gpd.GeoDataFrame(rows, columns=["order", "geometry"], geometry="geometry", crs=crs)


def basin_frame(name: str, cells: float, geometry: object, grid: GridSpec) -> gpd.GeoDataFrame:
    """The ``basin`` layer: its name, area (km2, from its cell count) and outline, in the grid CRS."""
    return gpd.GeoDataFrame(
        {"name": [name], "area_km2": [cells * grid.cell_area_m2 / 1e6]}, geometry=[geometry], crs=grid.crs
    )
