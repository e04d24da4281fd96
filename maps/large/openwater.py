"""Open water at the grid's edge, found tile by tile.

The rule is that of :mod:`plastic_hotspots.maps.science.openwater`.

Three passes over a tiled DEM, holding a few tiles and the tiles' edges in memory (no whole-grid
array):

1. the tiles' edges of the DEM (:class:`~plastic_hotspots.maps.large.store.Seams`), for halos;
2. the flats' labels (:func:`~plastic_hotspots.maps.science.openwater.window_labels`), relaxed over the
   tiles as the routing's fill is (:func:`~plastic_hotspots.maps.large.mapper.relax_tiles`): a label only
   goes down, to the least edge-touching flat index of its flat, so the relaxation stops at the
   whole grid's labels;
3. each tile's summary of its flats, merged, gives the open-water labels; the DEM is written again
   with those cells made nodata.

The cells found are those of :func:`plastic_hotspots.maps.science.openwater.open_water` on the whole grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.maps.kernels.windows import STEPS
from plastic_hotspots.maps.large.mapper import Mapper, relax_tiles, serial_map
from plastic_hotspots.maps.large.store import Border, Seams, TiledRaster
from plastic_hotspots.maps.science.openwater import (
    FLAT_TOLERANCE_M,
    NO_LABEL,
    FlatSummary,
    flat_summary,
    merge_summaries,
    open_water_labels,
    window_labels,
)

__all__ = ["mask_open_water_tiled"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class LabelTask:
    """Label the flats of one tile of ``dem`` into ``out``, with the halos of the DEM and the labels."""

    dem: TiledRaster
    out: TiledRaster
    ti: int
    tj: int
    dem_halo: Border
    label_halo: Border


def label_tile(task: LabelTask) -> Border:
    """Run a :class:`LabelTask`; returns the edges of the tile's labels."""
    lay = task.dem.layout
    r0, _, c0, _ = lay.window(task.ti, task.tj)
    z = task.dem.read(task.ti, task.tj)
    padded = task.dem_halo.pad(np.where(np.isfinite(z), z, np.nan))
    halo = task.label_halo.pad(np.full(z.shape, NO_LABEL, dtype=np.int64))
    labels = window_labels(padded, halo, (r0, c0), lay.cols)
    task.out.write(task.ti, task.tj, labels)
    return Border.of(labels)


def _label_check(dem: Seams, labels: Seams, ti: int, tj: int) -> float | None:
    """None if a tile's labels are still the fixpoint: no halo cell on one of its flats holds less."""
    zp = dem.padded(ti, tj, np.nan)
    lp = labels.padded(ti, tj, NO_LABEL)
    ring = np.zeros(zp.shape, dtype=np.bool_)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    h, w = zp.shape[0] - 2, zp.shape[1] - 2
    zc, lc = zp[1:-1, 1:-1], lp[1:-1, 1:-1]
    for dr, dc in STEPS:
        nz = zp[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        nl = lp[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        halo = ring[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        if np.any(halo & (np.abs(nz - zc) <= FLAT_TOLERANCE_M) & (nl < lc)):
            return 0.0
    return None


def mask_open_water_tiled(
    dem: TiledRaster, sea_level_m: float | None, work: Path, *, mapper: Mapper | None = None
) -> TiledRaster:
    """The tiled DEM with its open water made nodata (see the module docstring).

    Args:
        dem: The DEM on the grid, tile by tile (NaN for nodata).
        sea_level_m: The sea's level in metres, or None to keep every cell (``dem`` is returned).
        work: Folder for the labels and the masked DEM (``.tiles`` files).
        mapper: Runs the tile tasks (default :func:`~plastic_hotspots.maps.large.mapper.serial_map`).

    Returns:
        The masked DEM (a new tiled raster), or ``dem`` when ``sea_level_m`` is None.
    """
    if sea_level_m is None:
        return dem
    lay = dem.layout
    run = mapper or serial_map
    z_seams = Seams(lay, np.float64, np.nan)
    for ti, tj in lay.tiles():
        z_seams.store(ti, tj, Border.of(dem.read(ti, tj)))
    labels = TiledRaster.create(work / "open_water_labels.tiles", lay, np.int64)
    l_seams = Seams(lay, np.int64, NO_LABEL)
    relax_tiles(
        lay,
        run,
        label_tile,
        lambda ti, tj, _hint: LabelTask(
            dem, labels, ti, tj, z_seams.halo(ti, tj, np.nan), l_seams.halo(ti, tj, NO_LABEL)
        ),
        lambda ti, tj: _label_check(z_seams, l_seams, ti, tj),
        l_seams.store,
    )
    parts: list[FlatSummary] = []
    for ti, tj in lay.tiles():
        padded = z_seams.halo(ti, tj, np.nan).pad(dem.read(ti, tj))
        parts.append(flat_summary(padded, labels.read(ti, tj)))
    keep = open_water_labels(merge_summaries(parts), sea_level_m)
    if not keep.size:
        return dem
    out = TiledRaster.create(work / "dem_land.tiles", lay, np.float64)
    for ti, tj in lay.tiles():
        out.write(ti, tj, np.where(np.isin(labels.read(ti, tj), keep), np.nan, dem.read(ti, tj)))
    return out
