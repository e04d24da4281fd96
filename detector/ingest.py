"""Finding and reading survey inputs: photos, video frames and GeoTIFF tiles, each with a position.

:func:`discover` turns files and folders into a sorted list of :class:`WorkItem` (one per photo, per
sampled video frame, per raster tile); :func:`load` reads one item into pixels and an
:class:`~plastic_hotspots.records.ImageRecord`, or raises
:class:`~plastic_hotspots.detector.errors.IngestError` with a
reason the batch writes to its rejects table.

Where a position comes from, by kind of input:

* photos: EXIF GPS; else a sidecar CSV/GeoJSON row (``--sidecar``); else rejected (``no_position``).
* video frames: the GPX track (``--gpx``) interpolated at the frame's time, which is the video's start
  (``--video-start``, else the file's creation time) plus the frame offset plus ``--clock-offset-s``.
* GeoTIFF tiles: the raster's transform, so every box gets its own ground position
  (:func:`pixel_to_lonlat`).

Photos are JPEG, PNG, TIFF, WebP, BMP or HEIC/HEIF (read through ``pillow-heif``, whose opener is
registered the first time a photo is opened). Nothing found is dropped in silence: every file under a
source folder that is not used (another type, a hidden file, an empty video) becomes a work item that
:func:`load` rejects with its reason, so it lands in the rejects table. Only the ``--sidecar`` and
``--gpx`` files themselves are left out, being inputs of another kind.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.errors import ConfigError, GeotagError
from plastic_hotspots.records import ImageRecord

if TYPE_CHECKING:
    from PIL import Image

    from plastic_hotspots.detector.gpx import Track

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif"})
HEIF_SUFFIXES = frozenset({".heic", ".heif"})
#: Pillow formats read as photos (MPO: the multi-picture JPEG many cameras write); others are rejected.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "TIFF", "WEBP", "BMP", "HEIF")
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv"})
RASTER_SUFFIXES = frozenset({".tif", ".tiff"})

#: Typical horizontal error of a phone or action-camera GNSS fix, used when the input states none.
DEFAULT_GNSS_ERROR_M = 10.0
#: Decompression-bomb limit: 120 megapixels takes a 108 MP phone photo, refuses forged headers.
DEFAULT_MAX_PIXELS = 120_000_000

ItemKind = Literal["photo", "video_frame", "raster_tile"]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How inputs are found, sampled and geotagged.

    Attributes:
        sidecar: CSV or GeoJSON of positions for photos without EXIF GPS (columns/properties
            ``image``, ``lon``, ``lat``; optional ``captured_at``, ``heading_deg``, ``altitude_m``,
            ``location_error_m``). ``image`` is a file name or a path relative to the sidecar.
        gpx: GPX track that geotags video frames.
        video_every_s: Sample a video frame every this many seconds.
        video_every_m: Also require this many metres travelled (GPX) since the last sampled frame.
        clock_offset_s: Seconds added to video time to match the GPX clock.
        video_start: Start time of every video (default: each file's own creation time).
        tile_size: Tile edge in pixels for GeoTIFF rasters.
        max_pixels: Larger images are rejected as ``too_large`` before they are decoded.
        decode_size: Decode JPEG photos at a reduced size (DCT scaling) as long as their long side
            stays at least this many pixels; 0 decodes at full size (needed for sliced inference).
    """

    sidecar: Path | None = None
    gpx: Path | None = None
    video_every_s: float = 1.0
    video_every_m: float | None = None
    clock_offset_s: float = 0.0
    video_start: datetime | None = None
    tile_size: int = 2048
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_size: int = 0

    def __post_init__(self) -> None:
        if not self.video_every_s > 0:
            raise ConfigError(f"video sampling interval must be positive, got {self.video_every_s} s")
        if self.video_every_m is not None and not self.video_every_m > 0:
            raise ConfigError(f"video sampling distance must be positive, got {self.video_every_m} m")
        if self.tile_size < 64:
            raise ConfigError(f"raster tile size must be at least 64 pixels, got {self.tile_size}")
        if not math.isfinite(self.clock_offset_s):
            raise ConfigError(
                f"--clock-offset-s must be a number of seconds, got {self.clock_offset_s}",
                hint="e.g. --clock-offset-s -3.5 when the camera's clock runs 3.5 s ahead of the GPS",
            )


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One unit of detection work: a photo, a video frame or a raster tile.

    Attributes:
        key: Stable identifier, unique in a run (``path``, ``path#t=12.000``, ``path#tile=x,y``).
        kind: What the item is.
        path: The file it is read from.
        frame_time_s: Seconds from the start of the video (video frames only; ``None`` for a video
            that could not be opened, which :func:`load` then rejects).
        window: ``(x0, y0, x1, y1)`` pixel window of a raster tile.
    """

    key: str
    kind: ItemKind
    path: Path
    frame_time_s: float | None = None
    window: tuple[int, int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An item's upright RGB pixels and what is known about where and when they were taken.

    Attributes:
        item: The work item.
        image: ``(H, W, 3)`` uint8 RGB, EXIF orientation applied.
        record: Size, position, time and location error of the image.
        georef: Affine ``(a, b, c, d, e, f)`` from pixel to CRS coordinates (rasters only).
        crs: The raster's CRS as WKT (rasters only).
        scale: ``(sx, sy)`` of the decoded pixels relative to the full image (below 1 when a JPEG was
            decoded at reduced size); boxes are divided by it to give full-image pixels.
    """

    item: WorkItem
    image: npt.NDArray[np.uint8]
    record: ImageRecord
    georef: tuple[float, float, float, float, float, float] | None = None
    crs: str | None = None
    scale: tuple[float, float] = (1.0, 1.0)


# --------------------------------------------------------------------------------------------- discover


def discover(
    sources: Sequence[Path], options: IngestOptions, own_outputs: Sequence[Path] = ()
) -> list[WorkItem]:
    """List the work items under ``sources`` (files, and folders searched recursively), sorted by key.

    ``own_outputs`` are the run's own files and folders (its outputs, parts and lock): never inputs,
    wherever they lie.

    Raises:
        ConfigError: A source does not exist.
    """
    files: list[Path] = []
    skip = {p.resolve() for p in (options.sidecar, options.gpx) if p is not None}
    outputs = [Path(p).resolve() for p in own_outputs]
    skip.update(outputs)
    for source in sources:
        src = Path(source)
        if src.is_dir():
            files.extend(p for p in sorted(src.rglob("*")) if _listed(p, skip, outputs))
        elif src.is_file():
            files.append(src)
        else:
            raise ConfigError(
                f"input {src} does not exist", hint="check the path (folders are searched recursively)"
            )
    items: list[WorkItem] = []
    seen: set[str] = set()
    for path in files:
        for item in _items_of(path, options):
            if item.key not in seen:
                seen.add(item.key)
                items.append(item)
    items.sort(key=lambda it: it.key)
    return items


def _listed(path: Path, skip: set[Path], outputs: Sequence[Path] = ()) -> bool:
    """Whether a path found in a source folder is an input: anything but a folder or the run's own files.

    The run's own files are its sidecar and GPX track, and its outputs (files, or anything inside its
    parts folder); a file of another type, or a broken link, is listed so that :func:`load` rejects it
    with the reason.
    """
    if path.is_dir():
        return False
    try:
        resolved = path.resolve()
    except OSError:  # a link that cannot be resolved (a loop): listed, and rejected as unreadable
        return True
    return resolved not in skip and not any(resolved.is_relative_to(o) for o in outputs)


def _items_of(path: Path, options: IngestOptions) -> list[WorkItem]:
    suffix = path.suffix.lower()
    key = path.as_posix()
    if suffix in VIDEO_SUFFIXES:
        return _video_items(path, options)
    if suffix in RASTER_SUFFIXES:
        info = _raster_info(path)
        if info is not None:
            width, height = info
            return [
                WorkItem(f"{key}#tile={x0},{y0}", "raster_tile", path, window=(x0, y0, x1, y1))
                for x0, y0, x1, y1 in _tiles(width, height, options.tile_size)
            ]
    return [WorkItem(key, "photo", path)]  # of another type too: load() rejects it with the reason


def _tiles(width: int, height: int, size: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping windows of at most ``size`` pixels covering a raster."""
    return [
        (x0, y0, min(x0 + size, width), min(y0 + size, height))
        for y0 in range(0, height, size)
        for x0 in range(0, width, size)
    ]


def _raster_info(path: Path) -> tuple[int, int] | None:
    """Width and height of a georeferenced raster; ``None`` for a plain (non-georeferenced) TIFF."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None or src.transform.is_identity:
                    return None
                return int(src.width), int(src.height)
    except (RasterioIOError, OSError):
        return None


def _video_items(path: Path, options: IngestOptions) -> list[WorkItem]:
    from plastic_hotspots.detector.video import probe, sample_times

    key = path.as_posix()
    try:
        info = probe(path)
    except IngestError:
        return [WorkItem(key, "video_frame", path)]
    distance_at = None
    if options.video_every_m is not None and options.gpx is not None:
        track = _track(options.gpx)
        start = _video_start(path, info.created_at, options)
        if start is not None:

            def distance_at(t: float) -> float | None:
                moment = start + timedelta(seconds=t + options.clock_offset_s)
                if track.position_at(moment) is None:
                    return None
                return float(track.distance_along_m(moment))

    times = sample_times(
        info.duration_s, options.video_every_s, every_m=options.video_every_m, distance_at=distance_at
    )
    if not times:  # no frame to sample (a zero-length video): one item, which load() rejects
        return [WorkItem(key, "video_frame", path)]
    return [WorkItem(f"{key}#t={t:09.3f}", "video_frame", path, frame_time_s=t) for t in times]


# ------------------------------------------------------------------------------------------------- load


def load(item: WorkItem, options: IngestOptions) -> LoadedImage:
    """Read one item's pixels and position.

    Raises:
        IngestError: The item cannot be used; ``reason`` says why (see ``plastic_hotspots.detector.errors``).
    """
    if item.kind == "photo":
        return _load_photo(item, options)
    if item.kind == "video_frame":
        return _load_frame(item, options)
    return _load_tile(item, options)


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(
            "unreadable", f"{path}: {exc.strerror or exc}", "check the file's permissions"
        ) from exc
    if size == 0:
        raise IngestError("empty_file", f"{path} is empty (0 bytes)", "copy the file again from the camera")


@lru_cache(maxsize=1)
def _register_heif() -> bool:
    """Teach Pillow to open HEIC/HEIF (once, on the first photo); ``False`` without ``pillow-heif``."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    # The decoder applies the HEIF rotation/mirror transforms (irot/imir) and resets the EXIF
    # orientation to 1, so the pixels come upright and upright() leaves them as they are.
    register_heif_opener()
    return True


def _check_photo_type(path: Path) -> None:
    """Reject a file whose extension is not one of a photo we read, saying which are."""
    suffix = path.suffix.lower()
    if suffix in PHOTO_SUFFIXES:
        return
    what = f"'{suffix}' files are" if suffix else "a file without an extension is"
    raise IngestError(
        "not_an_image",
        f"{path}: {what} not read by detect (photos: {', '.join(sorted(PHOTO_SUFFIXES))}; "
        f"videos: {', '.join(sorted(VIDEO_SUFFIXES))})",
        "convert it to JPEG, or move it out of the input folder",
    )


def _open_image(path: Path, max_pixels: int) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    _check_file(path)
    heif = _register_heif()
    if path.suffix.lower() in HEIF_SUFFIXES and not heif:
        raise IngestError(
            "not_an_image",
            f"{path} is a HEIC/HEIF photo and pillow-heif is not installed",
            "pip install 'plastic-hotspots[detect]' (or pillow-heif), or convert the photo to JPEG",
        )
    Image.init()
    formats = [name for name in PHOTO_FORMATS if name in Image.OPEN]  # MPO is JPEG's in newer Pillow
    # Our own limit replaces Pillow's warning, which would otherwise fire between 89 and 120 MP.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        # Pillow refuses the worst forged headers itself; our own limit is checked below, still before
        # any pixel is decoded.
        img = Image.open(path, formats=formats)
    except Image.DecompressionBombError as exc:
        raise IngestError("too_large", f"{path}: {exc}", "split the image into tiles first") from exc
    except (UnidentifiedImageError, ImportError) as exc:  # ImportError: a third-party opener's plugin
        raise IngestError(
            "not_an_image",
            f"{path} is not a JPEG, PNG, TIFF, WebP, BMP or HEIC image",
            "remove it or convert it to JPEG",
        ) from exc
    except PermissionError as exc:
        raise IngestError("unreadable", f"{path}: {exc}", "check the file's permissions") from exc
    except (
        OSError,
        ValueError,
        SyntaxError,
        struct.error,
    ) as exc:  # a header Pillow recognised but cannot parse
        reason: Literal["truncated", "corrupt"] = "truncated" if "truncat" in str(exc).lower() else "corrupt"
        raise IngestError(reason, f"{path}: {exc}", "copy the file again from the camera") from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise IngestError(
            "too_large",
            f"{path} is {width}x{height} = {width * height / 1e6:.0f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.0f}",
            "cut it into tiles, save it as a GeoTIFF (read tile by tile), or raise max_pixels",
        )
    return img


def _reduce_jpeg(img: Image.Image, decode_size: int) -> None:
    """Let the JPEG decoder scale down (1/2, 1/4, 1/8) while the long side stays >= ``decode_size``.

    Decoding a 12-megapixel photo at full size costs more than running a small model on it; the
    model sees at most ``decode_size`` pixels anyway. Other formats are decoded at full size.
    """
    if not decode_size or img.format != "JPEG":
        return
    w, h = img.size
    if max(w, h) < 2 * decode_size:
        return
    ratio = decode_size / max(w, h)
    img.draft("RGB", (math.ceil(w * ratio), math.ceil(h * ratio)))


def _decode(img: Image.Image, path: Path) -> Image.Image:
    try:
        img.load()
    except OSError as exc:
        text = str(exc)
        reason: Literal["truncated", "corrupt"] = "truncated" if "truncated" in text else "corrupt"
        raise IngestError(reason, f"{path}: {text}", "copy the file again from the camera") from exc
    except (ValueError, SyntaxError, IndexError, struct.error) as exc:
        raise IngestError("corrupt", f"{path}: {exc}", "copy the file again from the camera") from exc
    return img


def _load_photo(item: WorkItem, options: IngestOptions) -> LoadedImage:
    from PIL import Image

    from plastic_hotspots.exif import read_exif, upright

    path = item.path
    _check_photo_type(path)
    img = _open_image(path, options.max_pixels)
    with img:
        try:
            exif = read_exif(img)
        except GeotagError as exc:
            raise IngestError("impossible_gps", exc.message, exc.hint) from exc
        except Exception as exc:  # malformed EXIF blocks raise many kinds of error inside Pillow
            raise IngestError("corrupt", f"{path}: unreadable EXIF ({exc})", "re-save the photo") from exc
        lon, lat = exif.lon, exif.lat
        captured_at, heading, altitude = exif.captured_at, exif.heading_deg, exif.altitude_m
        error_m = exif.gps_error_m or DEFAULT_GNSS_ERROR_M
        missing: IngestError | None = None
        row = None
        if lon is None or lat is None:
            row = _sidecar_row(options.sidecar, path) if options.sidecar is not None else None
            if row is None:
                hint = (
                    f"add a row for {path.name} to the sidecar {options.sidecar}"
                    if options.sidecar
                    else "pass --sidecar positions.csv with columns image, lon, lat"
                )
                missing = IngestError("no_position", f"{path} has no EXIF GPS position", hint)
        if row is not None:
            lon, lat = row.lon, row.lat
            captured_at = captured_at or row.captured_at
            heading = heading if heading is not None else row.heading_deg
            altitude = altitude if altitude is not None else row.altitude_m
            error_m = row.location_error_m or DEFAULT_GNSS_ERROR_M
        full_w, full_h = img.size
        if exif.orientation in {5, 6, 7, 8}:
            full_w, full_h = full_h, full_w
        _reduce_jpeg(img, options.decode_size)
        _decode(img, path)  # a broken file is reported as broken, before any missing position
        if missing is not None:
            raise missing
        pixels = upright(img)
        rgb = pixels if pixels.mode == "RGB" else pixels.convert("RGB")
        array = np.asarray(rgb, dtype=np.uint8)
        if rgb is not img and isinstance(rgb, Image.Image):
            rgb.close()
    record = ImageRecord(
        path=str(path),
        width=full_w,
        height=full_h,
        lon=lon,
        lat=lat,
        captured_at=captured_at,
        heading_deg=heading,
        altitude_m=altitude,
        location_error_m=error_m,
        source="photo",
    )
    scale = (array.shape[1] / full_w, array.shape[0] / full_h)
    return LoadedImage(item, array, record, scale=scale)


# -------------------------------------------------------------------------------------------- sidecars


@dataclass(frozen=True, slots=True)
class _SidecarRow:
    lon: float
    lat: float
    captured_at: datetime | None
    heading_deg: float | None
    altitude_m: float | None
    location_error_m: float | None


def check_position_files(options: IngestOptions) -> None:
    """Read the ``--sidecar`` and ``--gpx`` files before any image.

    A missing or broken one then stops the run with its message, instead of rejecting every photo or
    frame for want of a position (or, for a missing sidecar, ending in a traceback).

    Raises:
        ConfigError: The sidecar or the GPX track is missing or cannot be read.
    """
    if options.sidecar is not None:
        if not options.sidecar.is_file():
            raise ConfigError(f"sidecar {options.sidecar} does not exist", hint="check the --sidecar path")
        _read_sidecar(options.sidecar.resolve(), options.sidecar.stat().st_mtime_ns)
    if options.gpx is not None:
        _track(options.gpx)


def _sidecar_row(sidecar: Path, photo: Path) -> _SidecarRow | None:
    rows = _read_sidecar(sidecar.resolve(), sidecar.stat().st_mtime_ns)
    base = sidecar.resolve().parent
    resolved = photo.resolve()
    try:
        relative = resolved.relative_to(base).as_posix()
    except ValueError:
        relative = None
    row = rows.get(relative) if relative else None
    if row is None:
        row = rows.get(photo.name)
    if row is None:
        return None
    if isinstance(row, IngestError):
        raise row
    return row


@lru_cache(maxsize=8)
def _read_sidecar(path: Path, _mtime_ns: int) -> dict[str, _SidecarRow | IngestError]:
    """Rows of a sidecar by image name (and relative path); bad coordinates become errors."""
    if not path.is_file():
        raise ConfigError(f"sidecar {path} does not exist", hint="check the --sidecar path")
    records: list[dict[str, Any]]
    if path.suffix.lower() in {".geojson", ".json"}:
        records = _geojson_records(path)
    else:
        import pandas as pd

        frame = pd.read_csv(path)
        records = [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
    if records and not {"image", "lon", "lat"} <= set(records[0]):
        raise ConfigError(
            f"sidecar {path} lacks the columns image, lon, lat (has {', '.join(map(str, records[0]))})",
            hint="name the columns image, lon, lat "
            "(optional: captured_at, heading_deg, altitude_m, location_error_m)",
        )
    out: dict[str, _SidecarRow | IngestError] = {}
    for rec in records:
        name = str(rec["image"]).replace("\\", "/")
        out[name] = _sidecar_parse(path, name, rec)
        out.setdefault(Path(name).name, out[name])
    return out


def _geojson_records(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        records = []
        for feature in doc["features"]:
            props = dict(feature.get("properties") or {})
            name = props.get("image") or props.get("file") or props.get("filename")
            lon, lat = feature["geometry"]["coordinates"][:2]
            records.append({**props, "image": name, "lon": lon, "lat": lat})
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"sidecar {path} is not a GeoJSON FeatureCollection of points ({exc})",
            hint="give each photo a Point feature with an 'image' property",
        ) from exc
    return records


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _sidecar_parse(path: Path, name: str, rec: dict[str, Any]) -> _SidecarRow | IngestError:
    lon, lat = _opt_float(rec.get("lon")), _opt_float(rec.get("lat"))
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
        return IngestError(
            "impossible_gps",
            f"sidecar {path.name} gives {name} the impossible position "
            f"lon={rec.get('lon')}, lat={rec.get('lat')}",
            "fix the row: lon in [-180, 180], lat in [-90, 90], in decimal degrees (EPSG:4326)",
        )
    captured_at = None
    raw_time = rec.get("captured_at")
    if isinstance(raw_time, str) and raw_time.strip():
        try:
            captured_at = datetime.fromisoformat(raw_time.strip())
        except ValueError:
            captured_at = None
    return _SidecarRow(
        lon=lon,
        lat=lat,
        captured_at=captured_at,
        heading_deg=_opt_float(rec.get("heading_deg")),
        altitude_m=_opt_float(rec.get("altitude_m")),
        location_error_m=_opt_float(rec.get("location_error_m")),
    )


# ---------------------------------------------------------------------------------------------- video


@lru_cache(maxsize=4)
def _track(path: Path) -> Track:
    from plastic_hotspots.detector.gpx import read_gpx

    return read_gpx(path)


def _video_start(path: Path, created_at: datetime | None, options: IngestOptions) -> datetime | None:
    start = options.video_start or created_at
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start


def _load_frame(item: WorkItem, options: IngestOptions) -> LoadedImage:
    from plastic_hotspots.detector.video import probe, read_frame

    path = item.path
    _check_file(path)
    info = probe(path)  # raises IngestError for a video that cannot be opened
    if item.frame_time_s is None:
        raise IngestError("corrupt", f"{path}: no frame could be sampled", "check the video plays")
    if options.gpx is None:
        raise IngestError("no_position", f"{path}: video frames need a GPS track", "pass --gpx track.gpx")
    start = _video_start(path, info.created_at, options)
    if start is None:
        raise IngestError(
            "no_position",
            f"{path} records no creation time, so its frames cannot be matched to the GPX track",
            "pass --video-start 2026-03-14T08:00:00+07:00",
        )
    moment = start + timedelta(seconds=item.frame_time_s + options.clock_offset_s)
    position = _track(options.gpx).position_at(moment)
    if position is None:
        raise IngestError(
            "no_position",
            f"{item.key}: {moment.isoformat()} is outside the GPX track (or in a gap)",
            "check --video-start and --clock-offset-s against the track's times",
        )
    frame = read_frame(path, item.frame_time_s)
    lon, lat = position
    record = ImageRecord(
        path=item.key,
        width=int(frame.shape[1]),
        height=int(frame.shape[0]),
        lon=lon,
        lat=lat,
        captured_at=moment,
        location_error_m=DEFAULT_GNSS_ERROR_M,
        source="video",
    )
    return LoadedImage(item, frame, record)


# --------------------------------------------------------------------------------------------- rasters


def _load_tile(item: WorkItem, options: IngestOptions) -> LoadedImage:
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    path = item.path
    if item.window is None:
        raise IngestError("corrupt", f"{item.key}: a raster tile without a window", "run discover() again")
    x0, y0, x1, y1 = item.window
    _check_file(path)
    try:
        with rasterio.open(path) as src:
            window = Window(x0, y0, x1 - x0, y1 - y0)
            bands = min(src.count, 3)
            data = src.read(list(range(1, bands + 1)), window=window)
            transform = src.window_transform(window)
            crs = src.crs
    except (RasterioIOError, OSError) as exc:
        raise IngestError("corrupt", f"{item.key}: {exc}", "check the GeoTIFF opens in QGIS") from exc
    if crs is None:
        raise IngestError(
            "no_position", f"{path} has no CRS", "assign one, e.g. gdal_edit.py -a_srs EPSG:32647"
        )
    rgb = _to_rgb8(data)
    georef = (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
    crs_wkt = crs.to_wkt()
    loaded = LoadedImage(item, rgb, _placeholder_record(item, rgb), georef, crs_wkt)
    centre = pixel_to_lonlat(loaded, rgb.shape[1] / 2, rgb.shape[0] / 2)
    if centre is None:
        raise IngestError(
            "no_position", f"{item.key}: the tile's position cannot be computed", "check its CRS"
        )
    record = ImageRecord(
        path=item.key,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        lon=centre[0],
        lat=centre[1],
        location_error_m=_pixel_size_m(georef, crs_wkt, centre[1]),
        source="raster",
    )
    return LoadedImage(item, rgb, record, georef, crs_wkt)


def _placeholder_record(item: WorkItem, rgb: npt.NDArray[np.uint8]) -> ImageRecord:
    return ImageRecord(path=item.key, width=int(rgb.shape[1]), height=int(rgb.shape[0]), source="raster")


def _to_rgb8(data: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """``(bands, H, W)`` raster data as ``(H, W, 3)`` uint8 (grey replicated, wide types stretched)."""
    if data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    elif data.shape[0] == 2:
        data = np.concatenate([data, data[:1]], axis=0)
    if data.dtype != np.uint8:
        values = data.astype(np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        data = np.clip(np.nan_to_num((values - lo) * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.transpose(data, (1, 2, 0)))


def _pixel_size_m(georef: tuple[float, ...], crs_wkt: str, lat: float) -> float:
    """Ground size of one pixel, in metres: the location error of a box centred by the raster."""
    size = math.hypot(georef[0], georef[3])
    crs = _crs(crs_wkt)
    if crs.is_geographic:
        return size * 111_320.0 * max(math.cos(math.radians(lat)), 0.01)
    return size * float(crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0)


@lru_cache(maxsize=16)
def _crs(crs_wkt: str) -> Any:
    from pyproj import CRS

    return CRS.from_wkt(crs_wkt)


@lru_cache(maxsize=16)
def _to_lonlat(crs_wkt: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(_crs(crs_wkt), "EPSG:4326", always_xy=True)


def pixel_to_lonlat(loaded: LoadedImage, x: float, y: float) -> tuple[float, float] | None:
    """Ground position (lon, lat, EPSG:4326) of pixel ``(x, y)`` of a georeferenced tile; else ``None``."""
    if loaded.georef is None or loaded.crs is None:
        return None
    a, b, c, d, e, f = loaded.georef
    gx, gy = c + a * x + b * y, f + d * x + e * y
    lon, lat = _to_lonlat(loaded.crs).transform(gx, gy)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return float(lon), float(lat)
