"""Raster input layers (the DEM, any band) reprojected onto a basin's grid, with CRS checks.

A DEM may come as tiles (``dem: [a.tif, b.tif]``). Tiles that share a CRS and a pixel lattice are
joined first, in their own CRS, by a GDAL VRT that places each tile's pixels (no resampling), and the
VRT is then resampled onto the grid as one raster is: tiles cut from one raster give that raster's
grid exactly, with no seam. Tiles of other CRSs or lattices form further groups, each resampled onto
the grid; a cell takes the first group (in the order listed) with data there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from plastic_hotspots.errors import READING_HINT, is_reading_error, library_message
from plastic_hotspots.maps.config import DemSource
from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]


def require_file(path: Path, what: str) -> None:
    """Raise a :class:`LayerError` naming the config entry when a layer's file is missing."""
    if not Path(path).is_file():
        raise LayerError(f"{what} file not found: {path}", hint="check the path in the basin config")


@contextmanager
def reading_layer(path: Path | str, what: str) -> Iterator[None]:
    """Turn a library's error while reading a layer's file into a :class:`LayerError` naming the file.

    Raises:
        LayerError: rasterio, pyogrio, pyarrow, ... could not read ``path`` (its words are kept).
    """
    try:
        yield
    except Exception as exc:
        if not is_reading_error(exc):
            raise
        raise LayerError(
            f"the {what} file could not be read: {path}: {library_message(exc)}", hint=READING_HINT
        ) from exc


ASSIGN_CRS_HINT = "assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`, or re-export it with its CRS"
"""How to fix a raster without a CRS (GDAL's command line)."""


def check_raster_crs(
    src: rasterio.io.DatasetReader, path: Path, what: str, hint: str = ASSIGN_CRS_HINT
) -> None:
    """Raise a :class:`CRSError` when an input raster carries no CRS (both run modes read rasters so).

    Raises:
        CRSError: ``src`` has no CRS.
    """
    if src.crs is None:
        raise CRSError(f"the {what} raster {path} has no CRS", hint=hint)


def dem_tiles(dem: DemSource | Sequence[Path]) -> tuple[Path, ...]:
    """The files of a DEM given as one path or as tiles."""
    return (Path(dem),) if isinstance(dem, str | Path) else tuple(Path(p) for p in dem)


def dem_bounds_lonlat(dem: DemSource | Sequence[Path]) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in EPSG:4326 of a DEM: the box around all its tiles."""
    boxes = np.array([raster_bounds_lonlat(path, "DEM") for path in dem_tiles(dem)])
    west, south = boxes[:, 0].min(), boxes[:, 1].min()
    east, north = boxes[:, 2].max(), boxes[:, 3].max()
    return (float(west), float(south), float(east), float(north))


def raster_bounds_lonlat(path: Path, what: str = "raster") -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a raster in EPSG:4326."""
    require_file(path, what)
    with reading_layer(path, what), rasterio.open(path) as src:
        if src.crs is None:
            raise CRSError(f"the {what} raster {path} has no CRS", hint=ASSIGN_CRS_HINT)
        from rasterio.warp import transform_bounds

        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return (float(west), float(south), float(east), float(north))


def load_raster(path: Path, grid: GridSpec, *, what: str, resampling: Resampling) -> FloatArray:
    """Reproject band 1 of a raster onto the grid; nodata becomes NaN."""
    require_file(path, what)
    with reading_layer(path, what), rasterio.open(path) as src:
        check_raster_crs(src, path, what)
        if what == "DEM":
            check_dem_units(src, path)
        out = _reproject_band(src, path, grid, what, resampling)
    if not np.isfinite(out).any():
        raise LayerError(
            f"the {what} raster {path} does not overlap the basin grid",
            hint="check the area of interest and the raster's extent and CRS",
        )
    return out


def _reproject_band(
    src: rasterio.io.DatasetReader, label: str | Path, grid: GridSpec, what: str, resampling: Resampling
) -> FloatArray:
    """Band 1 of an open raster on the grid (NaN for nodata and off the raster)."""
    data = read_band_nan(src)
    if not np.isfinite(data).any():
        raise LayerError(f"the {what} raster {label} holds nodata everywhere", hint="check its nodata value")
    out = np.full(grid.shape, np.nan, dtype=np.float64)
    reproject(
        source=data,
        destination=out,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=Affine(*grid.transform),
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def fill_gaps(out: FloatArray, values: FloatArray) -> None:
    """Set the NaN cells of ``out`` from ``values`` (a later mosaic group fills what earlier ones left)."""
    gap = np.isnan(out)
    out[gap] = values[gap]


def _lattice_key(src: rasterio.io.DatasetReader) -> tuple[str, float, float]:
    """Tiles with equal keys share a CRS and a pixel size (their origins are checked apart)."""
    t = src.transform
    return (src.crs.to_wkt(), round(t.a, 12), round(t.e, 12))


def _on_lattice(first: Affine, other: Affine) -> bool:
    """Whether ``other``'s origin lies on ``first``'s pixel lattice (north-up rasters only)."""
    if first.b or first.d or other.b or other.d:
        return False
    cols = float((other.c - first.c) / first.a)
    rows = float((other.f - first.f) / first.e)
    return abs(cols - round(cols)) < 1e-6 and abs(rows - round(rows)) < 1e-6


def _groups(sources: list[rasterio.io.DatasetReader]) -> list[list[int]]:
    """Indices of the tiles that can be joined without resampling, groups in the order first listed."""
    groups: list[list[int]] = []
    for i, src in enumerate(sources):
        for group in groups:
            head = sources[group[0]]
            if _lattice_key(head) == _lattice_key(src) and _on_lattice(head.transform, src.transform):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def mosaic_vrt(sources: Sequence[rasterio.io.DatasetReader], paths: Sequence[Path]) -> str:
    """A GDAL VRT (XML) joining tiles on one pixel lattice; float64, NaN where no tile has data.

    Each tile's own nodata value is left out; where tiles overlap, the first listed wins (GDAL draws
    the sources in order, so they are written last to first).
    """
    first = sources[0].transform
    offsets = [
        (round((s.transform.c - first.c) / first.a), round((s.transform.f - first.f) / first.e))
        for s in sources
    ]
    col0 = min(c for c, _ in offsets)
    row0 = min(r for _, r in offsets)
    width = max(c + s.width for (c, _), s in zip(offsets, sources, strict=True)) - col0
    height = max(r + s.height for (_, r), s in zip(offsets, sources, strict=True)) - row0
    origin = first @ (col0, row0)
    items = []
    for (col, row), src, path in reversed(list(zip(offsets, sources, paths, strict=True))):
        nodata = "" if src.nodata is None else f"<NODATA>{src.nodata!r}</NODATA>"
        items.append(
            "<ComplexSource>"
            f'<SourceFilename relativeToVRT="0">{escape(str(Path(path).resolve()))}</SourceFilename>'
            "<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"/>'
            f'<DstRect xOff="{col - col0}" yOff="{row - row0}" xSize="{src.width}" ySize="{src.height}"/>'
            f"{nodata}</ComplexSource>"
        )
    return (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        f"<SRS>{escape(sources[0].crs.to_wkt())}</SRS>"
        f"<GeoTransform>{origin[0]!r}, {first.a!r}, 0, {origin[1]!r}, 0, {first.e!r}</GeoTransform>"
        '<VRTRasterBand dataType="Float64" band="1"><NoDataValue>nan</NoDataValue>'
        f"{''.join(items)}</VRTRasterBand></VRTDataset>"
    )


@contextmanager
def open_mosaic(
    dem: DemSource | Sequence[Path], what: str = "DEM"
) -> Iterator[list[tuple[rasterio.io.DatasetReader, str]]]:
    """Open a raster given as one file or as tiles: one dataset per group of joinable tiles.

    Yields:
        ``(dataset, label)`` per group, in the order first listed: a single file as itself, a group
        of tiles as a VRT joining them (its label names the tiles).

    Raises:
        LayerError: A tile's file is missing, or it has no CRS.
    """
    paths = dem_tiles(dem)
    for path in paths:
        require_file(path, what)
    with ExitStack() as stack:
        sources = [stack.enter_context(rasterio.open(path)) for path in paths]
        for src, path in zip(sources, paths, strict=True):
            check_raster_crs(src, path, what)
            if what == "DEM":
                check_dem_units(src, path)
        opened: list[tuple[rasterio.io.DatasetReader, str]] = []
        for group in _groups(sources):
            if len(group) == 1:
                opened.append((sources[group[0]], str(paths[group[0]])))
                continue
            xml = mosaic_vrt([sources[i] for i in group], [paths[i] for i in group])
            memfile = stack.enter_context(MemoryFile(xml.encode("utf-8"), ext=".vrt"))
            label = "the tiles " + ", ".join(paths[i].name for i in group)
            opened.append((stack.enter_context(memfile.open()), label))
        yield opened


FEET_HINT = (
    "convert it to metres above sea level: feet x 0.3048, e.g. `gdal_calc.py -A dem.tif "
    '--calc="A*0.3048" --outfile dem_m.tif` (centimetres: divide by 100)'
)
"""How to convert a DEM in feet (or centimetres) to metres."""

HIGHEST_M = 9000.0
"""Above any summit on Earth (8,849 m): a DEM reaching higher is not in metres."""


def _in_feet(unit: str | None) -> bool:
    return unit is not None and unit.strip().lower().replace("_", " ") in {
        "ft", "foot", "feet", "us survey foot", "us foot", "ftus", "us-ft", "international foot", "ft us",
    }  # fmt: skip


def check_dem_units(src: rasterio.io.DatasetReader, path: Path | str) -> None:
    """Refuse a DEM whose file says its heights are feet: its band unit, or its CRS's vertical axis.

    Raises:
        LayerError: The band's unit (GDAL's unit type) or a compound CRS's vertical unit is a foot.
    """
    unit = src.units[0] if src.units else None
    if not _in_feet(unit) and src.crs is not None and src.crs.to_wkt().upper().startswith("COMPD_CS"):
        from pyproj import CRS

        vertical = CRS.from_wkt(src.crs.to_wkt()).sub_crs_list[-1]
        unit = vertical.axis_info[0].unit_name if vertical.axis_info else None
    if _in_feet(unit):
        raise LayerError(
            f"the DEM {path} is in feet (its file gives the heights' unit as {unit!r}); expected metres",
            hint=FEET_HINT,
        )


def check_dem_range(dem: DemSource | Sequence[Path], lowest: float, highest: float) -> None:
    """LayerError unless a DEM's elevations, ``lowest`` to ``highest``, are metres on Earth."""
    if highest > HIGHEST_M or lowest < -500.0:
        label = ", ".join(str(p) for p in dem_tiles(dem))
        raise LayerError(
            f"the DEM {label} has elevations from {lowest:.0f} to {highest:.0f}; expected metres (no land "
            f"lies above {HIGHEST_M:.0f} m or below -500 m: the DEM is likely in feet or centimetres)",
            hint=FEET_HINT,
        )


def load_dem(dem: DemSource | Sequence[Path], grid: GridSpec) -> FloatArray:
    """Load a DEM (metres) onto the grid by bilinear resampling: one raster, or tiles in any CRSs.

    Tiles are joined as the module docstring says; a single file is read as :func:`load_raster` does.

    Raises:
        LayerError: A tile is missing or has no CRS, a tile group holds nodata everywhere, the DEM
            does not overlap the grid, or its values are not metres.
    """
    tiles = dem_tiles(dem)
    if len(tiles) == 1:
        out = load_raster(tiles[0], grid, what="DEM", resampling=Resampling.bilinear)
    else:
        out = np.full(grid.shape, np.nan, dtype=np.float64)
        with open_mosaic(tiles) as groups:
            for src, label in groups:
                fill_gaps(out, _reproject_band(src, label, grid, "DEM", Resampling.bilinear))
        if not np.isfinite(out).any():
            raise LayerError(
                f"none of the DEM tiles {', '.join(str(p) for p in tiles)} overlaps the basin grid",
                hint="check the area of interest and the tiles' extents and CRSs",
            )
    finite = out[np.isfinite(out)]
    if finite.size:
        check_dem_range(tiles, float(finite.min()), float(finite.max()))
    return out
