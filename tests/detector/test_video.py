"""Video probing, frame times and frame reading on generated MP4s; GPX-geotagged frames end to end."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from fake_detector import FakeDetector
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gpx import write_gpx

from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.detector.ingest import IngestOptions, discover
from plastic_hotspots.detector.run import output_paths, run_detection
from plastic_hotspots.detector.video import MAC_EPOCH, mp4_creation_time, probe, read_frame, sample_times
from plastic_hotspots.errors import ConfigError

FPS = 10
SECONDS = 4
CREATED = datetime(2026, 3, 14, 1, 0, 0, tzinfo=UTC)


def write_video(path: Path, created: datetime | None = CREATED, bright_every: int = 0) -> Path:
    """4 s at 10 fps, 64x48; frame k has brightness 5k (and a bright square every ``bright_every``)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (64, 48))
    for k in range(FPS * SECONDS):
        frame = np.full((48, 64, 3), 5 * k, dtype=np.uint8)
        if bright_every and k % bright_every == 0:
            frame[0:32, 0:32] = 250
        writer.write(frame)
    writer.release()
    if created is not None:
        _set_creation_time(path, created)
    return path


def _set_creation_time(path: Path, when: datetime) -> None:
    """Patch the mvhd creation time of an MP4 written by OpenCV."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mvhd")
    version = data[at + 4]
    seconds = int((when - MAC_EPOCH).total_seconds())
    if version == 1:
        data[at + 8 : at + 16] = struct.pack(">Q", seconds)
    else:
        data[at + 8 : at + 12] = struct.pack(">I", seconds)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "ride.mp4")


def test_probe(video: Path) -> None:
    info = probe(video)
    assert (info.fps, info.frame_count, info.width, info.height) == (FPS, FPS * SECONDS, 64, 48)
    assert info.duration_s == pytest.approx(SECONDS)
    assert info.created_at == CREATED
    assert mp4_creation_time(video) == CREATED


def test_read_frame_at_time(video: Path) -> None:
    import cv2

    cap = cv2.VideoCapture(str(video))
    sequential = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        sequential.append(frame[:, :, ::-1])
    cap.release()
    assert len(sequential) == FPS * SECONDS
    for t in (0.0, 1.0, 2.5, 3.9):
        frame = read_frame(video, t)
        assert frame.shape == (48, 64, 3)
        np.testing.assert_array_equal(frame, sequential[round(t * FPS)])
        assert float(frame.mean()) == pytest.approx(5 * round(t * FPS), abs=6)  # lossy mp4v


def test_no_creation_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "plain.mp4", created=None)  # OpenCV writes 0: unknown
    assert probe(path).created_at is None
    assert path.read_bytes().count(b"mvhd") == 1


def _box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1: a 64-bit size follows the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _mvhd(version: int, seconds: int) -> bytes:
    created = struct.pack(">Q" if version == 1 else ">I", seconds)
    return _box(b"mvhd", bytes([version, 0, 0, 0]) + created + created + b"\x00" * 80)


@pytest.mark.parametrize("version", [0, 1])
def test_mvhd_creation_time_in_a_minimal_file(version: int, tmp_path: Path) -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
    seconds = int((when - MAC_EPOCH).total_seconds())
    path = tmp_path / "m.mov"
    moov = _box(b"moov", _box(b"udta", b"\x00" * 12) + _mvhd(version, seconds) + _box(b"trak", b""))
    # A large mdat (64-bit size) before moov, as cameras write when they do not rewrite the file.
    path.write_bytes(_box(b"ftyp", b"qt  \x00\x00\x00\x00") + _box(b"mdat", b"\xff" * 64, large=True) + moov)
    assert mp4_creation_time(path) == when
    path.write_bytes(_box(b"ftyp", b"isom") + _box(b"moov", _mvhd(version, 0)))
    assert mp4_creation_time(path) is None  # 0: unknown
    path.write_bytes(_box(b"ftyp", b"isom") + _box(b"moov", _mvhd(version, seconds))[:-60])
    assert mp4_creation_time(path) is None  # truncated: moov's size runs past the end
    path.write_bytes(_box(b"ftyp", b"isom") + _box(b"mdat", b"") + _box(b"free", b"\x00" * 8))
    assert mp4_creation_time(path) is None  # no moov at all
    assert mp4_creation_time(tmp_path / "missing.mp4") is None


def test_reading_past_the_end_or_a_bad_file(video: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot be decoded") as info:
        read_frame(video, SECONDS + 1.0)
    assert info.value.reason == "corrupt"
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(IngestError) as info:
        read_frame(bad, 0.0)
    assert info.value.reason == "corrupt"


def test_not_a_video(tmp_path: Path) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    with pytest.raises(IngestError) as info:
        probe(bad)
    assert info.value.reason == "not_an_image"
    assert mp4_creation_time(bad) is None


def test_sample_times_by_seconds_and_metres() -> None:
    assert sample_times(4.0, 1.0) == [0.0, 1.0, 2.0, 3.0]
    assert sample_times(4.05, 1.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert sample_times(1.0, 0.25) == [0.0, 0.25, 0.5, 0.75]
    # Stopped for 2 s (distance flat), then moving 5 m/s: keep a frame each 10 m travelled.
    distance = {0.0: 0.0, 1.0: 5.0, 2.0: 5.0, 3.0: 5.0, 4.0: 12.0, 5.0: 15.0, 6.0: 20.0, 7.0: 25.0}
    assert sample_times(8.0, 1.0, every_m=10.0, distance_at=distance.get) == [0.0, 4.0, 7.0]
    # Times without a known distance are kept (they are rejected later, visibly).
    assert sample_times(3.0, 1.0, every_m=10.0, distance_at=lambda t: None) == [0.0, 1.0, 2.0]
    # The first frame with a known distance is kept, wherever the distance starts.
    known = {0.0: None, 1.0: 300.0, 2.0: 305.0, 3.0: 310.0}
    assert sample_times(4.0, 1.0, every_m=10.0, distance_at=known.get) == [0.0, 1.0, 3.0]
    assert sample_times(0.0, 1.0) == []
    for bad in ({"every_s": 0.0}, {"every_s": -1.0}, {"every_s": 1.0, "every_m": 0.0}):
        with pytest.raises(ConfigError, match="positive"):
            sample_times(4.0, **bad)  # type: ignore[arg-type]


@given(
    st.floats(0.0, 600.0),
    st.floats(0.05, 30.0),
    st.floats(1.0, 50.0),
    st.floats(0.0, 20.0),
)
@settings(deadline=None, max_examples=60)
def test_sample_times_invariants(duration: float, every_s: float, every_m: float, speed: float) -> None:
    times = sample_times(duration, every_s)
    assert all(0 <= t < duration for t in times)
    assert times == sorted(set(times))
    assert len(times) == pytest.approx(duration / every_s, abs=1.0 + 1e-6)
    np.testing.assert_allclose(np.diff(times), every_s, atol=2e-6)
    kept = sample_times(duration, every_s, every_m=every_m, distance_at=lambda t: speed * t)
    assert set(kept) <= set(times)
    assert kept[:1] == times[:1]
    distances = np.array(kept) * speed
    assert np.all(np.diff(distances) >= every_m - 1e-9)
    kept_arr = np.array(kept)
    for t in set(times) - set(kept):  # each dropped frame was too close to the last kept one
        last = kept_arr[np.searchsorted(kept_arr, t) - 1]
        assert speed * t - speed * last < every_m


def test_video_frames_geotagged_from_gpx(tmp_path: Path) -> None:
    video = write_video(tmp_path / "ride.mp4", bright_every=10)  # a bright square at 0, 1, 2, 3 s
    # The logger clock runs 30 s ahead of the camera: the track starts 30 s after CREATED.
    t0 = CREATED + timedelta(seconds=30)
    gpx = write_gpx(tmp_path / "t.gpx", [(100.0, 20.0, t0), (100.004, 20.0, t0 + timedelta(seconds=4))])
    options = IngestOptions(gpx=gpx, video_every_s=0.5, clock_offset_s=30.0)
    out = tmp_path / "d.parquet"
    summary = run_detection([video], out, FakeDetector(), ingest=options)
    assert (summary.images, summary.rejected) == (8, 0)
    images = gpd.read_parquet(output_paths(out)["images"]).sort_values("image")
    np.testing.assert_allclose(images["lon"], 100.0 + 0.001 * np.arange(0, 4, 0.5), atol=1e-9)
    np.testing.assert_allclose(images["lat"], 20.0)
    assert images["items"].tolist() == [1, 0] * 4
    dets = gpd.read_parquet(out)
    np.testing.assert_allclose(sorted(dets["lon"]), [100.0, 100.001, 100.002, 100.003], atol=1e-9)


def test_video_frames_without_track_coverage_are_rejected(tmp_path: Path) -> None:
    video = write_video(tmp_path / "ride.mp4")
    write_video(tmp_path / "old.mp4", created=None)
    t0 = CREATED + timedelta(seconds=2.5)  # the track starts 2.5 s into ride.mp4 (2 s tolerance)
    gpx = write_gpx(tmp_path / "t.gpx", [(100.0, 20.0, t0), (100.004, 20.0, t0 + timedelta(seconds=10))])
    out = tmp_path / "d.parquet"
    summary = run_detection([tmp_path], out, FakeDetector(), ingest=IngestOptions(gpx=gpx))
    assert summary.images == 3  # ride.mp4 at 1 s, 2 s (within the tolerance) and 3 s
    rejects = gpd.read_parquet(output_paths(out)["images"]).query("status == 'rejected'")
    assert set(rejects["reason"]) == {"no_position"}
    assert len(rejects) == 1 + 4  # ride.mp4 at 0 s (before the track), all of old.mp4
    assert rejects["message"].str.contains("creation time").sum() == 4
    # every_m with the track (moving 41.8 m/s from 2.5 s): the frame at 0 s has no position and is
    # kept (to be rejected), 0.5 s is the first with one, then one frame per 20 m travelled.
    items = discover([video], IngestOptions(gpx=gpx, video_every_s=0.5, video_every_m=20.0))
    assert [it.frame_time_s for it in items] == [0.0, 0.5, 3.0, 3.5]
