"""Counting each item of a video once (``detect --track-items``) on a generated video whose items are known.

The video shows three coloured squares (two "bottles", one "bag_film") that enter, cross and leave the
frame at different times; a fake detector finds them by colour. The tracker is either a fake with one
stable id per colour (at the adapter seam, ``plastic_hotspots.detector.yolo.ByteTracker``) or the real
Ultralytics ByteTrack fed with the fake detector's boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pytest
from test_gpx import write_gpx
from test_video import CREATED, _set_creation_time

from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import output_paths, run_detection
from plastic_hotspots.detector.settings import TrackingSettings
from plastic_hotspots.detector.tracking import Sighting, nearest_rows, summarise_tracks
from plastic_hotspots.detector.video import frame_step, iter_frames
from plastic_hotspots.maps.inputs.observations import read_observations
from plastic_hotspots.records import BBox, Detection

W, H, FPS, FRAMES, SIDE = 320, 240, 10, 64, 32
# Each object: RGB colour, class, first frame, last frame, start x, y, pixels per frame.
OBJECTS = [
    ((255, 0, 0), "bottle", 0, 63, -20, 30, 6),  # enters from the left, leaves on the right
    ((0, 255, 0), "bag_film", 10, 63, 300, 110, -5),  # enters from the right
    ((0, 0, 255), "bottle", 20, 50, 100, 180, 3),  # appears, drifts, disappears
]
NAMES = {0: "bottle", 1: "bag_film"}
LON0, LON_PER_S = 100.0, 0.001  # the camera moves east 0.001 degrees a second


def _frame(k: int) -> npt.NDArray[np.uint8]:
    img = np.full((H, W, 3), 20, dtype=np.uint8)
    for colour, _, first, last, x0, y, dx in OBJECTS:
        if first <= k <= last:
            x = x0 + dx * (k - first)
            img[y : y + SIDE, max(0, x) : max(0, min(W, x + SIDE))] = colour
    return img


def visible_frames(index: int) -> list[int]:
    """Frames in which object ``index`` shows at least 8 pixel columns."""
    _, _, first, last, x0, _, dx = OBJECTS[index]
    return [
        k
        for k in range(first, last + 1)
        if min(W, x0 + dx * (k - first) + SIDE) - max(0, x0 + dx * (k - first)) >= 8
    ]


def write_shapes_video(path: Path) -> Path:
    """64 frames at 10 fps, 320x240, with the :data:`OBJECTS` moving across; creation time CREATED."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    for k in range(FRAMES):
        writer.write(np.ascontiguousarray(_frame(k)[:, :, ::-1]))
    writer.release()
    _set_creation_time(path, CREATED)
    return path


def _colour_index(pixel: npt.NDArray[np.float64]) -> int:
    return int(np.argmin([np.abs(pixel - np.array(c)).sum() for c, *_ in OBJECTS]))


class ColourDetector:
    """Finds each object's square by its colour (lossy video: a tolerance), one box per colour."""

    def __init__(self) -> None:
        self.frames = 0

    @property
    def names(self) -> dict[int, str]:
        return NAMES

    @property
    def model_version(self) -> str:
        return "colour-0001"

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        out = []
        for img in images:
            self.frames += 1
            dets = []
            for colour, name, *_ in OBJECTS:
                close = np.abs(img.astype(np.int16) - np.array(colour, np.int16)).sum(axis=2) < 150
                ys, xs = np.nonzero(close)
                if xs.size >= 8 * SIDE // 2:
                    box = BBox(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
                    dets.append(Detection(box, name, 0.5 + 0.4 * box.width / SIDE))  # best when whole
            out.append(dets)
        return out


class ColourTracker:
    """A stand-in for ByteTrack: the id of a box is its object's colour (stable, one per object)."""

    def __init__(self, config: str = "bytetrack.yaml", **_: object) -> None:
        self.config = config

    def update(self, detections: list[Detection], image: npt.NDArray[np.uint8]) -> list[int | None]:
        ids: list[int | None] = []
        for d in detections:
            cx, cy = int((d.box.x1 + d.box.x2) / 2), int((d.box.y1 + d.box.y2) / 2)
            ids.append(10 + _colour_index(image[cy, cx].astype(np.float64)))
        return ids


@pytest.fixture(scope="module")
def ride(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tracking")
    video = write_shapes_video(folder / "ride.mp4")
    end = CREATED + timedelta(seconds=10)
    gpx = write_gpx(folder / "t.gpx", [(LON0, 20.0, CREATED), (LON0 + 10 * LON_PER_S, 20.0, end)])
    return video, gpx


def _run(ride: tuple[Path, Path], out: Path, **tracking: object) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    video, gpx = ride
    run_detection(
        [video],
        out,
        ColourDetector(),
        ingest=IngestOptions(gpx=gpx, video_every_s=0.5),
        tracking=TrackingSettings(enabled=True, every_s=0.1, **tracking),  # type: ignore[arg-type]
    )
    paths = output_paths(out)
    return gpd.read_parquet(paths["images"]), gpd.read_parquet(paths["tracks"])


def _check_counts(images: gpd.GeoDataFrame, tracks: gpd.GeoDataFrame, out: Path) -> None:
    # Per frame, every sampled frame counts what it shows: many more than three items.
    per_frame = sum(len([k for k in visible_frames(i) if k % 5 == 0]) for i in range(len(OBJECTS)))
    assert images["items"].sum() >= per_frame - 3 > 3 * len(OBJECTS)
    # Tracked, each object counts once.
    assert len(tracks) == len(OBJECTS)
    assert tracks["counted"].all()
    assert images["unique_items"].sum() == len(OBJECTS)
    assert images["unique_n_bottle"].sum() == 2
    assert images["unique_n_bag_film"].sum() == 1
    assert sorted(tracks["class_name"]) == ["bag_film", "bottle", "bottle"]
    # Positions on the track: the camera's position at the best-seen time (linear track, lat 20).
    np.testing.assert_allclose(tracks["lon"], LON0 + LON_PER_S * tracks["best_seen_s"], atol=1e-9)
    np.testing.assert_allclose(tracks["lat"], 20.0)
    for _, t in tracks.iterrows():
        assert t["first_seen_s"] <= t["best_seen_s"] <= t["last_seen_s"]
        counted_in = images.set_index("image").loc[t["image"]]
        assert abs(float(t["image"].rsplit("#t=", 1)[1]) - t["best_seen_s"]) <= 0.25  # the nearest sample
        assert counted_in["unique_items"] >= 1
    # The map stage reads the unique counts: three items, no double counting.
    observations = read_observations(output_paths(out)["images"])
    assert observations["items"].sum() == len(OBJECTS)
    assert observations["n_bottle"].sum() == 2


def test_unique_items_with_a_stable_id_per_object(
    ride: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("plastic_hotspots.detector.yolo.ByteTracker", ColourTracker)
    images, tracks = _run(ride, tmp_path / "d.parquet")
    _check_counts(images, tracks, tmp_path / "d.parquet")
    # With one id per colour, each track spans exactly the frames its object is visible in.
    for i, (colour, *_rest) in enumerate(OBJECTS):
        row = tracks[tracks["track_id"] == 10 + _colour_index(np.array(colour, np.float64))].iloc[0]
        seen = visible_frames(i)
        assert row["frames"] == pytest.approx(len(seen), abs=2)
        assert row["first_seen_s"] == pytest.approx(seen[0] / FPS, abs=0.15)
        assert row["last_seen_s"] == pytest.approx(seen[-1] / FPS, abs=0.15)


def test_unique_items_with_ultralytics_bytetrack(ride: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("lap")  # Ultralytics' trackers need it (in the detect extra)
    images, tracks = _run(ride, tmp_path / "d.parquet")
    _check_counts(images, tracks, tmp_path / "d.parquet")
    assert tracks["frames"].min() >= 10


def test_without_tracking_nothing_changes(ride: tuple[Path, Path], tmp_path: Path) -> None:
    video, gpx = ride
    out = tmp_path / "d.parquet"
    output_paths(out)["tracks"].write_bytes(b"stale")
    run_detection([video], out, ColourDetector(), ingest=IngestOptions(gpx=gpx, video_every_s=0.5))
    images = gpd.read_parquet(output_paths(out)["images"])
    assert "unique_items" not in images.columns
    assert not output_paths(out)["tracks"].exists()
    assert read_observations(output_paths(out)["images"])["items"].sum() == images["items"].sum() > 3


def test_iter_frames_reads_in_order_at_a_step(ride: tuple[Path, Path]) -> None:
    video, _ = ride
    frames = list(iter_frames(video, 0.3))
    assert [round(t, 3) for t, _ in frames] == [round(k / FPS, 3) for k in range(0, FRAMES, 3)]
    assert len(frames) == 22  # frames 0, 3, ..., 63
    for t, image in frames:  # each is the frame of its time, in RGB
        assert image.shape == (H, W, 3)
        assert np.abs(image.astype(float) - _frame(round(t * FPS))).mean() < 3
    assert frame_step(10.0, 0.01) == 1
    assert frame_step(30.0, 0.2) == 6


def test_summaries_and_nearest_rows() -> None:
    box = BBox(0, 0, 10, 10)
    sightings = [
        Sighting(2, 0.2, "bottle", 0.5, box),
        Sighting(2, 0.1, "bag_film", 0.9, box),
        Sighting(2, 0.3, "bottle", 0.9, box),
        Sighting(1, 1.0, "bag_film", 0.4, box),
    ]
    one, two = summarise_tracks(sightings)
    assert (one.track_id, one.frames, one.class_name, one.best_seen_s) == (1, 1, "bag_film", 1.0)
    assert (two.first_seen_s, two.last_seen_s, two.frames) == (0.1, 0.3, 3)
    assert two.class_name == "bottle"  # seen twice as a bottle, once as film
    assert (two.best_seen_s, two.best_score) == (0.1, 0.9)  # highest score, the earliest on ties
    np.testing.assert_array_equal(nearest_rows([0.0, 0.74, 0.75, 9.0], [1.0, 0.5, 0.0]), [2, 1, 1, 0])
    np.testing.assert_array_equal(nearest_rows([1.0], []), [-1])


def test_bad_tracking_settings_say_how_to_fix() -> None:
    with pytest.raises(ModelError, match="tracking interval must be a positive"):
        TrackingSettings(every_s=0.0)
    with pytest.raises(ModelError, match="unknown tracker"):
        TrackingSettings(tracker="botsort.yaml")
