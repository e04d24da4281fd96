"""GPX reading and time interpolation against hand-computed points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plastic_hotspots.detector.gpx import Track, haversine_m, read_gpx
from plastic_hotspots.errors import ConfigError

T0 = datetime(2026, 3, 14, 1, 0, 0, tzinfo=UTC)
NAMESPACES = {"1.1": "http://www.topografix.com/GPX/1/1", "1.0": "http://www.topografix.com/GPX/1/0"}


def write_gpx(
    path: Path, points: Sequence[tuple[float, float, datetime | None]], version: str = "1.1"
) -> Path:
    """A GPX track of ``(lon, lat, time)`` points, each at 400 m elevation."""
    pts = "\n".join(
        f'<trkpt lat="{lat}" lon="{lon}"><ele>400</ele>'
        + (f"<time>{t.isoformat().replace('+00:00', 'Z')}</time>" if t else "")
        + "</trkpt>"
        for lon, lat, t in points
    )
    path.write_text(
        f'<?xml version="1.0"?>\n<gpx version="{version}" creator="test" xmlns="{NAMESPACES[version]}">'
        f"<trk><name>ride</name><trkseg>{pts}</trkseg></trk></gpx>",
        encoding="utf-8",
    )
    return path


def _haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """The textbook formula, written out independently of the module's."""
    r = 6_371_008.8
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return float(2 * r * np.arcsin(np.sqrt(a)))


@pytest.fixture
def track_file(tmp_path: Path) -> Path:
    # Riding east along 20°N: 10 s apart, then a 5-minute gap, then two more fixes.
    return write_gpx(
        tmp_path / "t.gpx",
        [
            (100.000, 20.0, T0),
            (100.001, 20.0, T0 + timedelta(seconds=10)),
            (100.003, 20.002, T0 + timedelta(seconds=20)),
            (100.004, 20.003, T0 + timedelta(seconds=320)),
            (100.005, 20.003, T0 + timedelta(seconds=330)),
        ],
    )


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_read_both_versions(version: str, tmp_path: Path) -> None:
    points = [(100.0, 20.0, T0), (100.1, 20.1, T0 + timedelta(seconds=5))]
    track = read_gpx(write_gpx(tmp_path / "t.gpx", points, version))
    assert track.name == "ride"
    assert track.start == T0
    assert track.end == T0 + timedelta(seconds=5)
    np.testing.assert_allclose(track.times_s, [T0.timestamp(), T0.timestamp() + 5])
    np.testing.assert_allclose(track.lon, [100.0, 100.1])
    np.testing.assert_allclose(track.lat, [20.0, 20.1])
    np.testing.assert_allclose(track.ele, [400.0, 400.0])


def test_interpolation_at_known_times(track_file: Path) -> None:
    track = read_gpx(track_file)
    assert track.position_at(T0) == pytest.approx((100.0, 20.0))
    assert track.position_at(T0 + timedelta(seconds=5)) == pytest.approx((100.0005, 20.0))
    assert track.position_at(T0 + timedelta(seconds=12.5)) == pytest.approx((100.0015, 20.0005))
    assert track.position_at(T0 + timedelta(seconds=325)) == pytest.approx((100.0045, 20.003))
    # The same moment given in another time zone, as POSIX seconds, and naive (taken as UTC).
    bangkok = (T0 + timedelta(seconds=5)).astimezone(timezone(timedelta(hours=7)))
    assert track.position_at(bangkok) == pytest.approx((100.0005, 20.0))
    assert track.position_at(T0.timestamp() + 5) == pytest.approx((100.0005, 20.0))
    assert track.position_at(datetime(2026, 3, 14, 1, 0, 5)) == pytest.approx((100.0005, 20.0))


def test_outside_the_track_and_in_gaps(track_file: Path) -> None:
    track = read_gpx(track_file)
    assert track.position_at(T0 - timedelta(seconds=1)) == pytest.approx((100.0, 20.0))  # tolerance
    assert track.position_at(T0 + timedelta(seconds=331.5)) == pytest.approx((100.005, 20.003))
    assert track.position_at(T0 - timedelta(seconds=3)) is None
    assert track.position_at(T0 + timedelta(seconds=333)) is None
    assert track.position_at(T0 + timedelta(seconds=100)) is None  # inside the 5-minute gap
    assert track.position_at(T0 + timedelta(seconds=20)) == pytest.approx((100.003, 20.002))  # its ends
    assert track.position_at(T0 + timedelta(seconds=320)) == pytest.approx((100.004, 20.003))
    assert track.position_at(float("nan")) is None


def test_vectorised_agrees_with_single_times(track_file: Path) -> None:
    track = read_gpx(track_file)
    offsets = np.array([-3.0, -1.0, 0.0, 5.0, 12.5, 100.0, 320.0, 325.0, 333.0])
    lon, lat = track.positions_at(T0.timestamp() + offsets)
    dist = track.distances_along_m(T0.timestamp() + offsets)
    assert lon.shape == lat.shape == dist.shape == offsets.shape
    for k, offset in enumerate(offsets):
        single = track.position_at(T0 + timedelta(seconds=float(offset)))
        if single is None:
            assert np.isnan([lon[k], lat[k], dist[k]]).all()
        else:
            assert (lon[k], lat[k]) == pytest.approx(single)
            assert dist[k] == pytest.approx(track.distance_along_m(T0 + timedelta(seconds=float(offset))))
    assert np.isnan(lon).tolist() == [True, False, False, False, False, True, False, False, True]


def test_distance_along(track_file: Path) -> None:
    track = read_gpx(track_file)
    first = _haversine(100.0, 20.0, 100.001, 20.0)
    second = _haversine(100.001, 20.0, 100.003, 20.002)
    # 0.001° of longitude at 20°N is about 104.5 m
    assert first == pytest.approx(111_195 * 0.001 * np.cos(np.radians(20)), rel=1e-3)
    assert track.distance_along_m(T0) == 0.0
    assert track.distance_along_m(T0 + timedelta(seconds=5)) == pytest.approx(first / 2)
    assert track.distance_along_m(T0 + timedelta(seconds=10)) == pytest.approx(first)
    assert track.distance_along_m(T0 + timedelta(seconds=15)) == pytest.approx(first + second / 2)
    assert track.distance_along_m(T0 + timedelta(seconds=20)) == pytest.approx(first + second)
    assert track.distance_along_m(T0 + timedelta(seconds=331)) == pytest.approx(track.length_m)
    assert float(haversine_m(100.0, 20.0, 100.001, 20.0)) == pytest.approx(first, rel=1e-12)
    assert np.isnan(track.distance_along_m(T0 + timedelta(hours=1)))
    assert np.isnan(track.distance_along_m(T0 + timedelta(seconds=100)))  # in the gap


def test_offsets_points_without_time_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "t.gpx"
    path.write_text(
        '<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="1" lon="2"><time>2026-03-14T08:00:00+07:00</time></trkpt>'
        '<trkpt lat="1.5" lon="2.5"></trkpt>'
        '<trkpt lat="3" lon="4"><time>2026-03-14T08:00:00+07:00</time></trkpt>'
        '<trkpt lat="2" lon="3"><time>2026-03-14T01:00:10Z</time></trkpt>'
        '<trkpt lat="2.5" lon="3.5"><time>2026-03-13T22:00:20.000-03:00</time></trkpt>'
        "</trkseg></trk></gpx>"
    )
    track = read_gpx(path)
    assert track.times_s.tolist() == [T0.timestamp(), T0.timestamp() + 10, T0.timestamp() + 20]
    assert track.start == T0
    assert track.end == T0 + timedelta(seconds=20)
    assert track.position_at(T0 + timedelta(seconds=5)) == pytest.approx((2.5, 1.5))  # first of duplicates
    assert np.isnan(track.ele).all()
    assert track.name == "t"  # no <name>: the file's


def test_unsorted_segments_and_routes(tmp_path: Path) -> None:
    path = tmp_path / "r.gpx"
    path.write_text(
        '<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><rte><name>way</name>'
        '<rtept lat="10" lon="20"><time>2026-03-14T01:00:20Z</time></rtept>'
        '<rtept lat="11" lon="21"><time>2026-03-14T01:00:00Z</time></rtept>'
        "</rte></gpx>"
    )
    track = read_gpx(path)
    assert track.name == "way"
    assert track.lon.tolist() == [21.0, 20.0]  # sorted by time
    assert track.position_at(T0 + timedelta(seconds=5)) == pytest.approx((20.75, 10.75))


@given(
    st.floats(-179.0, 179.0),
    st.floats(-80.0, 80.0),
    st.floats(-0.01, 0.01),
    st.floats(-0.01, 0.01),
    st.floats(0.5, 60.0),
    st.floats(0.0, 1.0),
)
def test_interpolation_on_a_segment(
    lon: float, lat: float, dlon: float, dlat: float, span: float, f: float
) -> None:
    times = np.array([0.0, span])
    track = Track(times, np.array([lon, lon + dlon]), np.array([lat, lat + dlat]), np.full(2, np.nan))
    position = track.position_at(f * span)
    assert position == pytest.approx((lon + f * dlon, lat + f * dlat), abs=1e-9)
    total = _haversine(lon, lat, lon + dlon, lat + dlat)
    assert track.length_m == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert track.distance_along_m(f * span) == pytest.approx(f * total, rel=1e-9, abs=1e-6)


@given(st.lists(st.floats(-10.0, 400.0), min_size=2, max_size=30))
def test_distance_never_decreases(offsets: list[float]) -> None:
    times = np.array([0.0, 10.0, 20.0, 50.0, 150.0, 160.0])
    rng = np.random.default_rng(len(offsets))
    track = Track(times, rng.uniform(0, 1, 6), rng.uniform(0, 1, 6), np.zeros(6))
    t = np.sort(np.array(offsets))
    d = track.distances_along_m(t)
    known = d[~np.isnan(d)]
    assert np.all(np.diff(known) >= -1e-9)
    assert np.all((known >= 0) & (known <= track.length_m + 1e-9))
    assert np.isnan(d[(t > 50) & (t < 150)]).all()  # the 100 s gap
    assert np.isnan(d[(t < -2) | (t > 162)]).all()


def test_track_checks_its_arrays() -> None:
    with pytest.raises(ConfigError, match="strictly increasing"):
        Track(np.array([0.0, 0.0]), np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(ConfigError, match="one length"):
        Track(np.array([0.0, 1.0]), np.zeros(3), np.zeros(2), np.zeros(2))
    with pytest.raises(ConfigError, match="fewer than 2"):
        Track(np.array([0.0]), np.zeros(1), np.zeros(1), np.zeros(1))


def _one_point_gpx(lat: str, lon: str, time: str = "2026-01-01T00:00:00Z") -> str:
    return (
        f'<gpx><trk><trkseg><trkpt lat="{lat}" lon="{lon}"><time>{time}</time></trkpt></trkseg></trk></gpx>'
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not xml at all", "not a GPX file"),
        ("<kml></kml>", "not GPX"),
        (_one_point_gpx("1", "2"), "1 timed track points"),
        (_one_point_gpx("91", "2"), "off the globe"),
        (_one_point_gpx("1", "-180.5"), "off the globe"),
        (_one_point_gpx("nan", "2"), "off the globe"),
        (_one_point_gpx("0", "0"), "0°, 0°"),
        (_one_point_gpx("x", "2"), "bad position or time"),
        (_one_point_gpx("1", "2", "yesterday"), "bad position or time"),
        (_one_point_gpx("1", "2").replace(' lon="2"', ""), "bad position or time"),
        (_one_point_gpx("1", "2") * 2, "not a GPX file"),  # two root elements
    ],
)
def test_bad_files(content: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.gpx"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match) as info:
        read_gpx(path)
    assert info.value.hint


def test_same_times_and_missing_file(tmp_path: Path) -> None:
    path = write_gpx(tmp_path / "t.gpx", [(100.0, 20.0, T0), (100.1, 20.1, T0), (100.2, 20.2, None)])
    with pytest.raises(ConfigError, match="same time"):
        read_gpx(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_gpx(tmp_path / "missing.gpx")
