"""EXIF GPS in every hemisphere, times, headings, orientation, and impossible values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from exif_photos import dms, write_exif_photo
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageOps, TiffImagePlugin

from plastic_hotspots.errors import GeotagError
from plastic_hotspots.exif import ExifInfo, dms_to_degrees, read_exif, upright

PLACES = {
    "chiang_rai": (20.27, 100.08),  # N, E
    "santiago": (-33.45, -70.67),  # S, W
    "quito": (-0.18, -78.47),  # S, W, near the equator
    "london": (51.5, -0.12),  # N, W, near the meridian
    "brisbane": (-27.47, 153.03),  # S, E
}


def _dark(h: int = 48, w: int = 64) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(0).integers(0, 60, size=(h, w, 3), dtype=np.uint8)


def _save_with_gps(path: Path, tags: Mapping[int, object]) -> Path:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update(tags)
    Image.fromarray(_dark()).save(path, exif=exif)
    return path


def _read(path: Path) -> ExifInfo:
    with Image.open(path) as img:
        return read_exif(img)


@pytest.mark.parametrize("place", sorted(PLACES))
def test_positions_in_every_hemisphere(place: str, tmp_path: Path) -> None:
    lat, lon = PLACES[place]
    altitude = -12.5 if place == "santiago" else 402.0
    path = tmp_path / f"{place}.jpg"
    write_exif_photo(path, _dark(), lat=lat, lon=lon, altitude_m=altitude)
    info = _read(path)
    assert info.lat == pytest.approx(lat, abs=1e-6)
    assert info.lon == pytest.approx(lon, abs=1e-6)
    assert info.altitude_m == pytest.approx(altitude)
    assert (info.heading_deg, info.gps_error_m, info.captured_at) == (None, None, None)


def test_time_heading_and_gps_error(tmp_path: Path) -> None:
    taken = datetime(2026, 3, 14, 8, 30, 15, tzinfo=timezone(timedelta(hours=7)))
    path = tmp_path / "p.jpg"
    write_exif_photo(
        path, _dark(), lat=20.1, lon=100.2, captured_at=taken, heading_deg=371.5, gps_error_m=4.2
    )
    info = _read(path)
    assert info.captured_at == taken
    assert info.captured_at.utcoffset() == timedelta(hours=7)
    assert info.heading_deg == pytest.approx(11.5)  # 371.5° is 11.5° east of north
    assert info.gps_error_m == pytest.approx(4.2)


def test_negative_offset_is_kept(tmp_path: Path) -> None:
    taken = datetime(2026, 1, 2, 23, 59, 59, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
    path = tmp_path / "p.jpg"
    write_exif_photo(path, _dark(), lat=47.56, lon=-52.71, captured_at=taken)
    info = _read(path)
    assert info.captured_at == taken
    assert info.captured_at.astimezone(UTC) == datetime(2026, 1, 3, 3, 29, 59, tzinfo=UTC)


def test_gps_utc_time_when_no_offset(tmp_path: Path) -> None:
    tags = {1: "N", 2: (20.0, 0.0, 0.0), 3: "E", 4: (100.0, 30.0, 0.0), 7: (1.0, 2.0, 3.0), 29: "2026:03:14"}
    info = _read(_save_with_gps(tmp_path / "p.jpg", tags))
    assert info.captured_at == datetime(2026, 3, 14, 1, 2, 3, tzinfo=UTC)
    assert (info.lon, info.lat) == (100.5, 20.0)


def test_camera_clock_without_zone_is_naive(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:03:14 08:30:15"
    path = tmp_path / "p.jpg"
    Image.fromarray(_dark()).save(path, exif=exif)
    info = _read(path)
    assert info.captured_at == datetime(2026, 3, 14, 8, 30, 15)
    assert info.captured_at.tzinfo is None


def test_no_gps_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(_dark()).save(path)
    info = _read(path)
    assert (info.lon, info.lat, info.altitude_m, info.captured_at, info.orientation) == (
        None, None, None, None, 1,
    )  # fmt: skip


def _upright_picture() -> npt.NDArray[np.uint8]:
    up = _dark(40, 60)
    up[4:12, 40:56] = 255  # a bright box near the top right of the upright picture
    return up


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_stands_upright(orientation: int, tmp_path: Path) -> None:
    up = _upright_picture()
    path = tmp_path / "p.png"
    write_exif_photo(path, up, lat=1.0, lon=2.0, orientation=orientation, fmt="PNG")
    with Image.open(path) as img:
        img.load()
        stored = np.asarray(img)
        assert read_exif(img).orientation == orientation
        turned = upright(img)
        again = upright(turned)
        reference = ImageOps.exif_transpose(img)  # Pillow's own reading of the tag, as an oracle
        assert turned.size == (60, 40)  # width, height of the upright picture
    assert stored.shape[:2] == ((60, 40) if orientation >= 5 else (40, 60))  # 5-8 are stored sideways
    assert (orientation == 1) == np.array_equal(stored, up)
    np.testing.assert_array_equal(np.asarray(turned), up)
    np.testing.assert_array_equal(np.asarray(reference), up)
    np.testing.assert_array_equal(np.asarray(again), up)  # applying it twice does not turn twice
    ys, xs = np.nonzero(np.asarray(turned)[..., 0] == 255)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (4, 11, 40, 55)


@pytest.mark.parametrize("orientation", [2, 3, 6, 8])
def test_orientation_of_jpeg_photos(orientation: int, tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:40, 0:60]
    up = np.stack([xx * 2, yy * 3, np.full_like(xx, 60)], axis=-1).astype(np.uint8)  # smooth: JPEG-friendly
    up[4:12, 40:56] = 255
    path = tmp_path / "p.jpg"
    write_exif_photo(path, up, lat=1.0, lon=2.0, orientation=orientation)
    with Image.open(path) as img:
        turned = np.asarray(upright(img)).astype(int)
    assert turned.shape == up.shape
    assert np.abs(turned - up).mean() < 3  # JPEG is lossy; a wrong turn differs by 20 or more
    ys, xs = np.nonzero(turned[..., 0] > 200)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (4, 11, 40, 55)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(95.0, 100.0), (-91.0, 10.0), (45.0, 181.0), (10.0, -200.0), (0.0, 0.0)],
    ids=["lat95", "lat-91", "lon181", "lon-200", "null-island"],
)
def test_impossible_positions(lat: float, lon: float, tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    write_exif_photo(path, _dark(), lat=lat, lon=lon)
    with Image.open(path) as img, pytest.raises(GeotagError, match=r"off the globe|0°, 0°") as info:
        read_exif(img)
    assert info.value.reason == "impossible_gps"
    assert "sidecar" in info.value.hint


MALFORMED: dict[str, tuple[Mapping[int, object], str]] = {
    "minutes70": ({1: "N", 2: (20.0, 70.0, 0.0), 3: "E", 4: (100.0, 0.0, 0.0)}, r"\[0, 60\)"),
    "minutes60.5": ({1: "N", 2: (20.0, 60.5, 0.0), 3: "E", 4: (100.0, 0.0, 0.0)}, r"\[0, 60\)"),
    "seconds60.5": ({1: "N", 2: (20.0, 1.0, 0.0), 3: "E", 4: (100.0, 0.0, 60.5)}, r"\[0, 60\)"),
    "seconds60.001": ({1: "N", 2: (20.0, 1.0, 60.001), 3: "E", 4: (100.0, 0.0, 0.0)}, r"\[0, 60\)"),
    "bad_ref": ({1: "Q", 2: (20.0, 1.0, 0.0), 3: "E", 4: (100.0, 0.0, 0.0)}, "not N, S, E or W"),
    "swapped_refs": ({1: "E", 2: (20.0, 1.0, 0.0), 3: "N", 4: (100.0, 0.0, 0.0)}, "must be N/S"),
    "no_refs": ({2: (20.0, 1.0, 0.0), 4: (100.0, 0.0, 0.0)}, "reference"),
    "lat_only": ({1: "N", 2: (20.0, 1.0, 0.0)}, "not both"),
    "nan": (
        {1: "N", 2: (TiffImagePlugin.IFDRational(1, 0), 1.0, 0.0), 3: "E", 4: (100.0, 0.0, 0.0)},
        "malformed",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_gps_tags(name: str, tmp_path: Path) -> None:
    tags, match = MALFORMED[name]
    path = _save_with_gps(tmp_path / f"{name}.jpg", tags)
    with Image.open(path) as img, pytest.raises(GeotagError, match=match) as info:
        read_exif(img)
    assert info.value.reason == "impossible_gps"


@given(st.floats(min_value=-179.9999, max_value=179.9999, allow_nan=False))
def test_dms_round_trip(value: float) -> None:
    ref = "E" if value >= 0 else "W"
    got = dms_to_degrees(dms(value), ref)
    assert got == pytest.approx(value, abs=1e-6)  # 1/10000 s of arc: 3 mm
    assert dms_to_degrees(dms(value), ref.encode()) == got


@given(
    st.integers(0, 89),
    st.integers(0, 59),
    st.integers(0, 59_999),
    st.sampled_from(["N", "S", b"N", b"S"]),
)
def test_dms_from_tuples(degrees: int, minutes: int, millis: int, ref: str | bytes) -> None:
    value = degrees + minutes / 60 + millis / 1000 / 3600
    sign = -1 if ref in ("S", b"S") else 1
    got = dms_to_degrees(((degrees, 1), (minutes, 1), (millis, 1000)), ref)
    assert got == pytest.approx(sign * value, abs=1e-12)


def test_dms_accepts_bytes_refs_and_tuples() -> None:
    assert dms_to_degrees(((20, 1), (15, 1), (3600, 100)), b"S\x00") == pytest.approx(
        -(20 + 15 / 60 + 36 / 3600)
    )
    assert dms_to_degrees(TiffImagePlugin.IFDRational(41, 2), "W") == -20.5  # degrees only
    with pytest.raises(GeotagError, match="not N, S, E or W"):
        dms_to_degrees((1.0, 0.0, 0.0), "X")
    with pytest.raises(GeotagError, match="malformed"):
        dms_to_degrees((1.0, -2.0, 0.0), "N")
    with pytest.raises(GeotagError, match="malformed"):
        dms_to_degrees((1.0, 2.0, 3.0, 4.0), "N")
    with pytest.raises(GeotagError, match="malformed"):
        dms_to_degrees("twenty", "N")


def test_sixty_seconds_or_minutes_carry_over() -> None:
    """Cameras round 59.9997" up to 60.0" without carrying; 60 carries over, anything above is refused."""
    assert dms_to_degrees((12.0, 34.0, 60.0), "N") == dms_to_degrees((12.0, 35.0, 0.0), "N")
    assert dms_to_degrees((12.0, 60.0, 0.0), "E") == dms_to_degrees((13.0, 0.0, 0.0), "E")
    assert dms_to_degrees((12.0, 60.0, 7.5), "S") == dms_to_degrees((13.0, 0.0, 7.5), "S")
    assert dms_to_degrees(((12, 1), (59, 1), (60, 1)), "W") == dms_to_degrees((13.0, 0.0, 0.0), "W")
    assert dms_to_degrees((12.0, 34.0, 60.0004), "N") == pytest.approx(12 + 35 / 60 + 0.0004 / 3600)
    assert dms_to_degrees((89.0, 59.0, 60.0), "N") == 90.0
    for bad in [(12.0, 34.0, 60.5), (12.0, 60.5, 0.0), (12.0, 34.0, 60.0005), (12.0, 60.0, 60.5)]:
        with pytest.raises(GeotagError, match=r"\[0, 60\)"):
            dms_to_degrees(bad, "N")


@pytest.mark.parametrize(
    ("lat_dms", "lon_dms", "lat", "lon"),
    [
        ((12.0, 34.0, 60.0), (100.0, 4.0, 30.0), 12 + 35 / 60, 100 + 4 / 60 + 30 / 3600),  # seconds 60
        ((12.0, 60.0, 0.0), (100.0, 59.0, 60.0), 13.0, 101.0),  # minutes 60; seconds 60 into minutes 60
    ],
)
def test_photo_with_sixty_in_its_gps_is_placed(
    lat_dms: tuple[float, ...], lon_dms: tuple[float, ...], lat: float, lon: float, tmp_path: Path
) -> None:
    rationals = [tuple(TiffImagePlugin.IFDRational(round(v * 10), 10) for v in d) for d in (lat_dms, lon_dms)]
    path = _save_with_gps(tmp_path / "p.jpg", {1: "N", 2: rationals[0], 3: "E", 4: rationals[1]})
    info = _read(path)
    assert info.lat == pytest.approx(lat, abs=1e-12)
    assert info.lon == pytest.approx(lon, abs=1e-12)
