"""EXIF of survey photos: GPS position, altitude, time, heading, and orientation.

Positions come as degrees/minutes/seconds rationals with N/S/E/W references; the orientation tag says
how the stored pixels must be turned to stand upright. Boxes are always in upright pixels, so
:func:`upright` is applied before detection and every width/height after it is the upright one.

The capture time is read in this order of trust:

1. ``DateTimeOriginal`` with ``OffsetTimeOriginal``: the camera's clock and its offset from UTC, so
   an aware datetime in the photo's own time zone.
2. ``GPSDateStamp`` + ``GPSTimeStamp``: the satellites' UTC time, as an aware UTC datetime.
3. ``DateTimeOriginal`` (or ``DateTime``) alone: the camera's local clock with no zone, returned
   *naive*. Guessing a zone here would silently shift it by hours; the caller decides (e.g. from
   the survey's time zone).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from plastic_hotspots.errors import GeotagError

if TYPE_CHECKING:
    from PIL import Image

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112
DATETIME = 0x0132
DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011

GPS_LATITUDE_REF, GPS_LATITUDE = 1, 2
GPS_LONGITUDE_REF, GPS_LONGITUDE = 3, 4
GPS_ALTITUDE_REF, GPS_ALTITUDE = 5, 6
GPS_TIMESTAMP = 7
GPS_IMG_DIRECTION = 17
GPS_DATESTAMP = 29
GPS_H_POSITIONING_ERROR = 31

#: Minutes or seconds in [60, 60 + this) are a camera's rounding and carry over (60" -> +1'); above, rejected.
SIXTY_TOLERANCE = 0.0005
_SIXTY = 60.0

_HINT = "fix the photo's GPS tags (e.g. with exiftool) or remove them and give its position in a --sidecar"


@dataclass(frozen=True, slots=True)
class ExifInfo:
    """What a photo's EXIF says about where, when and which way up.

    Attributes:
        lon: Longitude, decimal degrees (EPSG:4326); ``None`` without GPS.
        lat: Latitude, decimal degrees; ``None`` without GPS.
        altitude_m: Altitude above sea level in metres (negative below).
        captured_at: Time of capture: aware when the photo records its UTC offset or a GPS time,
            naive camera-local time otherwise (see the module docstring).
        heading_deg: Direction the camera pointed (``GPSImgDirection``), degrees in [0, 360).
        orientation: EXIF orientation 1..8 (1: stored upright).
        gps_error_m: Horizontal positioning error the camera recorded (``GPSHPositioningError``).
    """

    lon: float | None = None
    lat: float | None = None
    altitude_m: float | None = None
    captured_at: datetime | None = None
    heading_deg: float | None = None
    orientation: int = 1
    gps_error_m: float | None = None


def _number(value: object) -> float:
    """A float from an EXIF rational (``IFDRational``, ``(num, den)`` tuple, int or float)."""
    if isinstance(value, tuple) and len(value) == 2:
        num, den = (_number(v) for v in value)
        return num / den if den != 0 else math.nan
    if isinstance(value, numbers.Real):
        return float(value)  # IFDRational with a zero denominator gives NaN here
    raise TypeError(f"expected a number or a rational, got {value!r}")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip("\x00 ").upper()


def _impossible(message: str) -> GeotagError:
    return GeotagError(message, _HINT)


def dms_to_degrees(dms: object, ref: object) -> float:
    """Decimal degrees from EXIF degrees/minutes/seconds and a hemisphere reference.

    Args:
        dms: Up to three rationals (degrees, minutes, seconds), each an ``IFDRational``, a
            ``(numerator, denominator)`` tuple or a number; a lone rational is taken as degrees.
        ref: ``N``, ``S``, ``E`` or ``W`` (str or bytes); ``S`` and ``W`` give negative degrees.

    Returns:
        Signed decimal degrees.

    Raises:
        GeotagError: ``impossible_gps`` for a malformed or NaN value, minutes or seconds not in
            [0, 60), or an unknown reference. A value of 60 itself (to within :data:`SIXTY_TOLERANCE`),
            which cameras write when they round 59.9997 up, carries over instead: 12° 34' 60" is
            12° 35' 0", and 12° 60' 0" is 13° 0' 0".
    """
    values = dms if isinstance(dms, tuple | list) else (dms,)
    try:
        parts = [_number(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise _impossible(f"malformed GPS coordinate {dms!r}") from exc
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        raise _impossible(f"malformed GPS coordinate {dms!r}")
    degrees, minutes, seconds = [*parts, 0.0, 0.0][:3]
    # Cameras round 59.9997" up to 60.0" without carrying it; such a 60 carries over like on a clock.
    if _SIXTY <= seconds < _SIXTY + SIXTY_TOLERANCE:
        seconds, minutes = seconds - _SIXTY, minutes + 1
    if _SIXTY <= minutes < _SIXTY + SIXTY_TOLERANCE:
        minutes, degrees = minutes - _SIXTY, degrees + 1
    if minutes >= _SIXTY or seconds >= _SIXTY:
        raise _impossible(f"GPS minutes and seconds must lie in [0, 60), got {dms!r}")
    hemisphere = _text(ref)
    if hemisphere not in {"N", "S", "E", "W"}:
        raise _impossible(f"GPS reference {ref!r} is not N, S, E or W")
    value = degrees + minutes / 60 + seconds / 3600
    return -value if hemisphere in {"S", "W"} else value


def _position(gps: Mapping[int, object]) -> tuple[float | None, float | None]:
    has_lat, has_lon = GPS_LATITUDE in gps, GPS_LONGITUDE in gps
    if not has_lat and not has_lon:
        return None, None
    if has_lat != has_lon:
        raise _impossible("the GPS tags have a latitude or a longitude, not both")
    if GPS_LATITUDE_REF not in gps or GPS_LONGITUDE_REF not in gps:
        raise _impossible("the GPS tags lack the N/S or E/W reference of the position")
    lat = dms_to_degrees(gps[GPS_LATITUDE], gps[GPS_LATITUDE_REF])
    lon = dms_to_degrees(gps[GPS_LONGITUDE], gps[GPS_LONGITUDE_REF])
    if _text(gps[GPS_LATITUDE_REF]) not in {"N", "S"} or _text(gps[GPS_LONGITUDE_REF]) not in {"E", "W"}:
        raise _impossible("the GPS latitude reference must be N/S and the longitude one E/W")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _impossible(f"GPS position lat={lat:.6f}, lon={lon:.6f} is off the globe")
    if lat == 0 and lon == 0:
        raise _impossible("GPS position is exactly 0°, 0° (a receiver's default, not a fix)")
    return lon, lat


def _optional(gps: Mapping[int, object], tag: int) -> float | None:
    """A finite number from an optional tag; ``None`` when absent or unreadable (it is only metadata)."""
    if tag not in gps:
        return None
    try:
        value = _number(gps[tag])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _parse_offset(text: str) -> timezone | None:
    """``+07:00`` / ``-03:30`` as a timezone; ``None`` when malformed."""
    text = text.strip("\x00 ")
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
        return timezone((-1 if text[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))
    except ValueError:  # non-digits, or an offset of a day or more
        return None


def _captured_at(
    exif_ifd: Mapping[int, object], base: Mapping[int, object], gps: Mapping[int, object]
) -> datetime | None:
    raw = exif_ifd.get(DATETIME_ORIGINAL) or base.get(DATETIME)
    local = None
    if isinstance(raw, str | bytes):
        try:
            local = datetime.strptime(_text(raw), "%Y:%m:%d %H:%M:%S")
        except ValueError:
            local = None
    if local is not None and OFFSET_TIME_ORIGINAL in exif_ifd:
        tz = _parse_offset(_text(exif_ifd[OFFSET_TIME_ORIGINAL]))
        if tz is not None:
            return local.replace(tzinfo=tz)
    stamp = gps.get(GPS_TIMESTAMP)
    if GPS_DATESTAMP in gps and isinstance(stamp, tuple | list) and len(stamp) == 3:
        try:
            day = datetime.strptime(_text(gps[GPS_DATESTAMP]), "%Y:%m:%d").replace(tzinfo=UTC)
            h, m, s = (_number(v) for v in stamp)
            return day + timedelta(hours=h, minutes=m, seconds=s)
        except (TypeError, ValueError, OverflowError):
            pass
    return local


def _orientation(value: object) -> int:
    """The orientation tag as 1..8; anything else (absent, malformed) counts as upright."""
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_exif(image: Image.Image) -> ExifInfo:
    """Read position, altitude, time, heading, orientation and GPS error from a photo's EXIF.

    Args:
        image: An opened Pillow image (pixels need not be decoded yet).

    Returns:
        What the EXIF says; fields the photo lacks are ``None`` (orientation defaults to 1).

    Raises:
        GeotagError: ``impossible_gps`` when GPS position tags are present but malformed, off the
            globe, or exactly at 0°, 0°.
    """
    exif = image.getexif()
    gps = dict(exif.get_ifd(GPS_IFD))
    exif_ifd = dict(exif.get_ifd(EXIF_IFD))
    lon, lat = _position(gps)
    altitude = _optional(gps, GPS_ALTITUDE)
    if altitude is not None and gps.get(GPS_ALTITUDE_REF) in (1, b"\x01", "\x01", "1"):
        altitude = -abs(altitude)  # reference 1: below sea level
    heading = _optional(gps, GPS_IMG_DIRECTION)
    error = _optional(gps, GPS_H_POSITIONING_ERROR)
    return ExifInfo(
        lon=lon,
        lat=lat,
        altitude_m=altitude,
        captured_at=_captured_at(exif_ifd, dict(exif), gps),
        heading_deg=heading % 360 if heading is not None else None,
        orientation=_orientation(exif.get(ORIENTATION)),
        gps_error_m=error if error is not None and error > 0 else None,
    )


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says, so that it stands upright.

    Width and height of the result are those of the upright image (swapped for orientations 5-8),
    and boxes found on it are in upright pixels. The result's EXIF orientation is 1, so applying
    this twice does not turn the image twice. An image already upright is returned as it is.

    Args:
        image: An opened Pillow image.

    Returns:
        The upright image (a new image unless the orientation is 1 or missing).
    """
    from PIL import Image as PILImage

    turn = {
        2: PILImage.Transpose.FLIP_LEFT_RIGHT,
        3: PILImage.Transpose.ROTATE_180,
        4: PILImage.Transpose.FLIP_TOP_BOTTOM,
        5: PILImage.Transpose.TRANSPOSE,
        6: PILImage.Transpose.ROTATE_270,  # stored turned 90° anticlockwise: turn it clockwise
        7: PILImage.Transpose.TRANSVERSE,
        8: PILImage.Transpose.ROTATE_90,
    }.get(_orientation(image.getexif().get(ORIENTATION)))
    if turn is None:
        return image
    turned = image.transpose(turn)
    turned.getexif()[ORIENTATION] = 1  # the cached EXIF of the new image; also what it would save
    return turned
