"""Writes photos with real EXIF (GPS IFD, orientation, times) the way a phone camera stores them."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, TiffImagePlugin

# How a camera stores the pixels for each orientation tag: the inverse of the transform a reader
# applies to make them upright.
_STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _rational(value: float, den: int = 10_000) -> TiffImagePlugin.IFDRational:
    frac = Fraction(value).limit_denominator(den)
    return TiffImagePlugin.IFDRational(frac.numerator, frac.denominator)


def dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    """Degrees, minutes, seconds of ``abs(value)`` as EXIF rationals (seconds to 1/10000)."""
    tenth_ms = round(abs(value) * 3600 * 10_000)  # in 1/10000 s of arc
    degrees, rest = divmod(tenth_ms, 3600 * 10_000)
    minutes, seconds = divmod(rest, 60 * 10_000)
    return (_rational(degrees, 1), _rational(minutes, 1), TiffImagePlugin.IFDRational(seconds, 10_000))


def write_exif_photo(
    path: Path,
    upright_rgb: npt.NDArray[np.uint8],
    *,
    lat: float | None = None,
    lon: float | None = None,
    altitude_m: float | None = None,
    captured_at: datetime | None = None,
    heading_deg: float | None = None,
    gps_error_m: float | None = None,
    orientation: int = 1,
    fmt: str = "JPEG",
) -> None:
    """Save ``upright_rgb`` with EXIF; pixels are stored turned as a camera would for ``orientation``."""
    img = Image.fromarray(upright_rgb)
    store = _STORE[orientation]
    if store is not None:
        img = img.transpose(store)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[0] = b"\x02\x03\x00\x00"
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = dms(lat)
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = dms(lon)
        if altitude_m is not None:
            gps[5] = b"\x01" if altitude_m < 0 else b"\x00"
            gps[6] = _rational(abs(altitude_m), 100)
        if heading_deg is not None:
            gps[16] = "T"
            gps[17] = _rational(heading_deg, 100)
        if gps_error_m is not None:
            gps[31] = _rational(gps_error_m, 100)
    if captured_at is not None:
        exif_ifd = exif.get_ifd(0x8769)
        exif_ifd[0x9003] = captured_at.strftime("%Y:%m:%d %H:%M:%S")
        offset = captured_at.utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds() // 60)
            sign = "-" if minutes < 0 else "+"
            exif_ifd[0x9011] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    img.save(path, fmt, exif=exif, **kwargs)
