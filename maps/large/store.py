"""On-disk tiled rasters and the in-memory seams between their tiles, for rasters larger than memory.

A raster of ``rows x cols`` cells is cut into square tiles of ``tile x tile`` cells (the last row and
column of tiles may be smaller): tile ``(ti, tj)`` covers rows ``ti * tile`` to
``min((ti + 1) * tile, rows)`` and the matching columns.

* :class:`TiledRaster` keeps one raster in a plain binary file, tile after tile (each tile a full
  ``tile x tile`` block, row-major inside), read and written one tile at a time with ``pread``/``pwrite``.
  Nothing is memory-mapped, so the memory a process holds (and its address space, which an
  ``RLIMIT_AS`` limit counts) grows with the tile, not the raster. Distinct tiles can be written by
  distinct processes at the same time.
* :class:`Seams` keeps, in memory, the first and last row and column of every tile of one raster:
  ``4 x rows x cols / tile`` values, what a tile needs from its eight neighbours as a one-cell halo.

Flat indices, ``down`` and the other conventions are those of :mod:`plastic_hotspots.maps.science.terrain`, on
the whole grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Border", "Seams", "TileLayout", "TiledRaster"]

Window = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class TileLayout:
    """How a ``rows x cols`` grid is cut into square tiles.

    Attributes:
        rows: Rows of the grid.
        cols: Columns of the grid.
        tile: Edge of a tile in cells (>= 2).
    """

    rows: int
    cols: int
    tile: int

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"a tiled grid needs at least one cell, got {self.rows} x {self.cols}")
        if self.tile < 2:
            raise ValueError(f"tiles must be at least 2 cells wide, got tile={self.tile}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.rows, self.cols)

    @property
    def tile_rows(self) -> int:
        """Number of rows of tiles."""
        return math.ceil(self.rows / self.tile)

    @property
    def tile_cols(self) -> int:
        """Number of columns of tiles."""
        return math.ceil(self.cols / self.tile)

    def window(self, ti: int, tj: int) -> Window:
        """``(r0, r1, c0, c1)``: the rows ``r0:r1`` and columns ``c0:c1`` of tile ``(ti, tj)``."""
        if not (0 <= ti < self.tile_rows and 0 <= tj < self.tile_cols):
            raise ValueError(
                f"tile ({ti}, {tj}) is outside the {self.tile_rows} x {self.tile_cols} tiles of the grid"
            )
        r0, c0 = ti * self.tile, tj * self.tile
        return r0, min(r0 + self.tile, self.rows), c0, min(c0 + self.tile, self.cols)

    def tiles(self) -> Iterator[tuple[int, int]]:
        """Every tile index, row by row."""
        for ti in range(self.tile_rows):
            for tj in range(self.tile_cols):
                yield ti, tj

    def neighbours(self, ti: int, tj: int) -> Iterator[tuple[int, int]]:
        """The (up to eight) tiles around ``(ti, tj)``."""
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                ni, nj = ti + dr, tj + dc
                if (dr or dc) and 0 <= ni < self.tile_rows and 0 <= nj < self.tile_cols:
                    yield ni, nj

    def ring_offsets(self) -> npt.NDArray[np.int64]:
        """Where each tile's ring cells start in the numbering of all rings (tiles in raster order).

        Ring ids number the outer-ring cells of every tile: tile by tile in raster order, and inside
        a tile in row-major order (as :meth:`ring_indices`). The last entry is the number of ring cells.
        """
        heights = np.minimum(self.tile, self.rows - np.arange(self.tile_rows) * self.tile)
        widths = np.minimum(self.tile, self.cols - np.arange(self.tile_cols) * self.tile)
        h, w = np.meshgrid(heights, widths, indexing="ij")
        sizes = np.where((h <= 2) | (w <= 2), h * w, 2 * w + 2 * (h - 2)).ravel()
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def ring_ids(
        self, cells: npt.ArrayLike, offsets: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.int64]:
        """Ring ids (see :meth:`ring_offsets`) of cells given by flat index, each on its tile's ring."""
        g = np.asarray(cells, dtype=np.int64)
        starts = self.ring_offsets() if offsets is None else offsets
        r, c = np.divmod(g, self.cols)
        ti, tj = r // self.tile, c // self.tile
        h = np.minimum(self.tile, self.rows - ti * self.tile)
        w = np.minimum(self.tile, self.cols - tj * self.tile)
        lr, lc = r - ti * self.tile, c - tj * self.tile
        per_row = np.minimum(w, 2)  # ring cells on a middle row
        pos = np.where(
            lr == 0,
            lc,
            np.where(lr == h - 1, w + (h - 2) * per_row + lc, w + (lr - 1) * per_row + (lc > 0)),
        )
        return np.asarray(starts[ti * self.tile_cols + tj] + pos, dtype=np.int64)

    def ring_indices(self, ti: int, tj: int) -> npt.NDArray[np.int64]:
        """Flat (grid) indices of the tile's outer ring of cells, sorted; the whole tile if it is thin."""
        r0, r1, c0, c1 = self.window(ti, tj)
        h, w = r1 - r0, c1 - c0
        ring = np.zeros((h, w), dtype=np.bool_)
        ring[0, :] = ring[-1, :] = True
        ring[:, 0] = ring[:, -1] = True
        rr, cc = np.nonzero(ring)
        return ((rr + r0) * self.cols + (cc + c0)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class TiledRaster:
    """One raster stored tile by tile in a binary file (see the module docstring).

    Build it with :meth:`create` (a new, zero-filled file) or :meth:`from_array`. It is a small,
    picklable description: worker processes can read and write the same file.

    Attributes:
        path: The file.
        layout: The tiling.
        dtype: numpy dtype name of the values (``"float64"``, ``"int32"``, ``"int64"`` ...).
    """

    path: Path
    layout: TileLayout
    dtype: str

    @classmethod
    def create(cls, path: Path, layout: TileLayout, dtype: npt.DTypeLike) -> TiledRaster:
        """A new raster file of zeros (sparse on disk until written)."""
        raster = cls(Path(path), layout, np.dtype(dtype).name)
        raster.path.parent.mkdir(parents=True, exist_ok=True)
        with raster.path.open("wb") as handle:
            handle.truncate(raster._tile_bytes * layout.tile_rows * layout.tile_cols)
        return raster

    @classmethod
    def from_array(cls, path: Path, values: npt.ArrayLike, tile: int) -> TiledRaster:
        """Write a 2-D array (in memory) as a tiled raster."""
        arr = np.asarray(values)
        if arr.ndim != 2:
            raise ValueError(f"a tiled raster is 2-D, got an array of shape {arr.shape}")
        layout = TileLayout(int(arr.shape[0]), int(arr.shape[1]), int(tile))
        raster = cls.create(path, layout, arr.dtype)
        for ti, tj in layout.tiles():
            r0, r1, c0, c1 = layout.window(ti, tj)
            raster.write(ti, tj, arr[r0:r1, c0:c1])
        return raster

    @property
    def _tile_bytes(self) -> int:
        return self.layout.tile * self.layout.tile * np.dtype(self.dtype).itemsize

    def _offset(self, ti: int, tj: int) -> int:
        return (ti * self.layout.tile_cols + tj) * self._tile_bytes

    def read(self, ti: int, tj: int) -> npt.NDArray[Any]:
        """The values of tile ``(ti, tj)``, shape ``(r1 - r0, c1 - c0)`` (a new array)."""
        r0, r1, c0, c1 = self.layout.window(ti, tj)
        t = self.layout.tile
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, self._tile_bytes, self._offset(ti, tj))
        finally:
            os.close(fd)
        if len(data) != self._tile_bytes:
            raise OSError(f"{self.path} is truncated: tile ({ti}, {tj}) is incomplete")
        block = np.frombuffer(data, dtype=self.dtype).reshape(t, t)
        return np.array(block[: r1 - r0, : c1 - c0])

    def write(self, ti: int, tj: int, values: npt.ArrayLike) -> None:
        """Store the values of tile ``(ti, tj)`` (shape ``(r1 - r0, c1 - c0)``)."""
        r0, r1, c0, c1 = self.layout.window(ti, tj)
        arr = np.asarray(values)
        if arr.shape != (r1 - r0, c1 - c0):
            raise ValueError(f"tile ({ti}, {tj}) has shape {(r1 - r0, c1 - c0)}, got values of {arr.shape}")
        t = self.layout.tile
        block = np.zeros((t, t), dtype=self.dtype)
        block[: r1 - r0, : c1 - c0] = arr
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, block.tobytes(), self._offset(ti, tj))
        finally:
            os.close(fd)

    def read_window(self, r0: int, r1: int, c0: int, c1: int) -> npt.NDArray[Any]:
        """Rows ``r0:r1`` and columns ``c0:c1`` of the raster (clipped to it), from the tiles they touch."""
        lay = self.layout
        r0, r1 = max(r0, 0), min(r1, lay.rows)
        c0, c1 = max(c0, 0), min(c1, lay.cols)
        out = np.empty((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=self.dtype)
        if not out.size:
            return out
        for ti in range(r0 // lay.tile, (r1 - 1) // lay.tile + 1):
            for tj in range(c0 // lay.tile, (c1 - 1) // lay.tile + 1):
                tr0, tr1, tc0, tc1 = lay.window(ti, tj)
                a0, a1, b0, b1 = max(r0, tr0), min(r1, tr1), max(c0, tc0), min(c1, tc1)
                out[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = self.read(ti, tj)[
                    a0 - tr0 : a1 - tr0, b0 - tc0 : b1 - tc0
                ]
        return out

    def to_array(self) -> npt.NDArray[Any]:
        """The whole raster in memory (for grids that fit; tests and small basins)."""
        out = np.empty(self.layout.shape, dtype=self.dtype)
        for ti, tj in self.layout.tiles():
            r0, r1, c0, c1 = self.layout.window(ti, tj)
            out[r0:r1, c0:c1] = self.read(ti, tj)
        return out


@dataclass(frozen=True, slots=True, eq=False)
class Border:
    """Four strips of values around or along a tile, as seams hand them out or take them in.

    Along a tile (its own edges, :meth:`of`): ``top``/``bottom`` are its first/last row (``w`` values),
    ``left``/``right`` its first/last column (``h`` values). Around a tile (a halo, from
    :meth:`Seams.halo`): ``top``/``bottom`` are the rows above/below it including the corners
    (``w + 2`` values), ``left``/``right`` the columns beside it (``h`` values).
    """

    top: npt.NDArray[Any]
    bottom: npt.NDArray[Any]
    left: npt.NDArray[Any]
    right: npt.NDArray[Any]

    @classmethod
    def of(cls, values: npt.NDArray[Any]) -> Border:
        """The edges of a tile's values."""
        return cls(
            np.array(values[0, :]), np.array(values[-1, :]), np.array(values[:, 0]), np.array(values[:, -1])
        )

    def pad(self, inner: npt.ArrayLike) -> npt.NDArray[Any]:
        """``inner`` (shape ``(h, w)``) surrounded by this halo: shape ``(h + 2, w + 2)``."""
        arr = np.asarray(inner)
        h, w = arr.shape
        if self.top.shape != (w + 2,) or self.left.shape != (h,):
            raise ValueError(
                f"a halo of {self.left.shape[0]} x {self.top.shape[0] - 2} cells does not fit "
                f"a tile of {h} x {w}"
            )
        out = np.empty((h + 2, w + 2), dtype=np.result_type(arr.dtype, self.top.dtype))
        out[1:-1, 1:-1] = arr
        out[0, :] = self.top
        out[-1, :] = self.bottom
        out[1:-1, 0] = self.left
        out[1:-1, -1] = self.right
        return out


class Seams:
    """The first and last row and column of every tile of one raster, in memory.

    ``top[ti]``/``bottom[ti]`` hold the grid's first/last row of tile row ``ti`` over the whole width;
    ``left[tj]``/``right[tj]`` its first/last column of tile column ``tj`` over the whole height.
    Cells whose tile has not been stored yet hold ``unknown``.
    """

    def __init__(self, layout: TileLayout, dtype: npt.DTypeLike, unknown: float | int) -> None:
        self.layout = layout
        self.dtype = np.dtype(dtype)
        self.unknown = unknown
        self.top = np.full((layout.tile_rows, layout.cols), unknown, dtype=self.dtype)
        self.bottom = np.full((layout.tile_rows, layout.cols), unknown, dtype=self.dtype)
        self.left = np.full((layout.tile_cols, layout.rows), unknown, dtype=self.dtype)
        self.right = np.full((layout.tile_cols, layout.rows), unknown, dtype=self.dtype)

    def store(self, ti: int, tj: int, edges: Border) -> bool:
        """Record the edges of tile ``(ti, tj)`` (see :meth:`Border.of`); whether any value changed."""
        r0, r1, c0, c1 = self.layout.window(ti, tj)
        changed = False
        for seam, index, span, values in (
            (self.top, ti, slice(c0, c1), edges.top),
            (self.bottom, ti, slice(c0, c1), edges.bottom),
            (self.left, tj, slice(r0, r1), edges.left),
            (self.right, tj, slice(r0, r1), edges.right),
        ):
            old = seam[index, span]
            if not changed and not np.array_equal(old, values, equal_nan=seam.dtype.kind == "f"):
                changed = True
            seam[index, span] = values
        return changed

    def own(self, ti: int, tj: int) -> Border:
        """The stored edges of tile ``(ti, tj)``."""
        r0, r1, c0, c1 = self.layout.window(ti, tj)
        return Border(
            self.top[ti, c0:c1].copy(),
            self.bottom[ti, c0:c1].copy(),
            self.left[tj, r0:r1].copy(),
            self.right[tj, r0:r1].copy(),
        )

    def halo(self, ti: int, tj: int, off_grid: float | int) -> Border:
        """The one-cell halo around tile ``(ti, tj)`` from its neighbours' edges; ``off_grid`` outside."""
        lay = self.layout
        r0, r1, c0, c1 = lay.window(ti, tj)
        h, w = r1 - r0, c1 - c0
        dtype = np.result_type(self.dtype, np.asarray(off_grid))
        top = np.full(w + 2, off_grid, dtype=dtype)
        bottom = np.full(w + 2, off_grid, dtype=dtype)
        left = np.full(h, off_grid, dtype=dtype)
        right = np.full(h, off_grid, dtype=dtype)
        # Columns c0 - 1 .. c1 of the rows above and below (corners included), clipped to the grid.
        lo, hi = max(c0 - 1, 0), min(c1 + 1, lay.cols)
        if ti > 0:
            top[lo - (c0 - 1) : hi - (c0 - 1)] = self.bottom[ti - 1, lo:hi]
        if ti < lay.tile_rows - 1:
            bottom[lo - (c0 - 1) : hi - (c0 - 1)] = self.top[ti + 1, lo:hi]
        if tj > 0:
            left[:] = self.right[tj - 1, r0:r1]
        if tj < lay.tile_cols - 1:
            right[:] = self.left[tj + 1, r0:r1]
        return Border(top, bottom, left, right)

    def padded(self, ti: int, tj: int, off_grid: float | int) -> npt.NDArray[Any]:
        """Tile ``(ti, tj)``'s own edges inside its halo, ``unknown`` in between: ``(h + 2, w + 2)``."""
        r0, r1, c0, c1 = self.layout.window(ti, tj)
        h, w = r1 - r0, c1 - c0
        inner = np.full((h, w), self.unknown, dtype=self.dtype)
        own = self.own(ti, tj)
        inner[0, :] = own.top
        inner[-1, :] = own.bottom
        inner[:, 0] = own.left
        inner[:, -1] = own.right
        return self.halo(ti, tj, off_grid).pad(inner)
