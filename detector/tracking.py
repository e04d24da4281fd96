"""Counting each item of a video once: a tracker follows detections from frame to frame (``--track-items``).

The sampled frames of a video (``--every-s``, ``--every-m``) are observations, each with the items
it shows, so an item in view for five sampled frames counts five times there. With tracking, a second
pass reads each video in order at a denser step (``--track-every-s``), runs the detector on those
frames and Ultralytics' ByteTrack (:class:`plastic_hotspots.detector.yolo.ByteTracker`) over its boxes,
so that an item seen in many frames keeps one track id. Each track then counts once:

* its position is the GPS track's position at the frame where it was **best seen** (its highest
  score; the earliest such frame on ties), interpolated in time like a sampled frame's;
* its class is the class it was detected as most often (ties: the highest total score);
* it is counted in exactly one row of the images table, the ``ok`` sampled frame of its video
  nearest in time to the best-seen frame, as ``unique_items`` and ``unique_n_<class>``. Photos and
  raster tiles are their own unique items (``unique_items = items``). A track with no position, or in
  a video with no usable sampled frame, is listed with ``counted`` false and counted nowhere.

ByteTrack reports a track from its second matched frame on (except on the very first frame), so
an item detected in a single tracked frame only is not counted.

The tracking logic (:func:`summarise_tracks`, :func:`nearest_rows`) is pure; :func:`track_video` and
:func:`count_unique_items` read videos and run the model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from plastic_hotspots.detector.chunks import Detector
from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.settings import TrackingSettings
from plastic_hotspots.records import BBox, Detection

TRACK_COLUMNS = (
    "track", "track_id", "class_name", "first_seen_s", "last_seen_s", "best_seen_s", "frames",
    "best_score", "captured_at", "lon", "lat", "image", "counted",
)  # fmt: skip


class FrameTracker(Protocol):
    """Follows detections through consecutive frames of one video (:class:`~.yolo.ByteTracker` does)."""

    def update(self, detections: list[Detection], image: npt.NDArray[np.uint8]) -> list[int | None]:
        """The track id of each of a frame's detections, ``None`` where it is not (yet) a track."""
        ...


@dataclass(frozen=True, slots=True)
class Sighting:
    """One tracked detection: which track, when, what and where in the frame."""

    track_id: int
    t_s: float
    class_name: str
    score: float
    box: BBox


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One item followed through a video.

    Attributes:
        track_id: The tracker's id, unique within the video.
        class_name: The class it was detected as most often.
        first_seen_s: Video time of its first frame, seconds.
        last_seen_s: Video time of its last frame.
        best_seen_s: Video time of the frame with its highest score (its position's time).
        frames: Tracked frames it was seen in.
        best_score: Its highest score.
    """

    track_id: int
    class_name: str
    first_seen_s: float
    last_seen_s: float
    best_seen_s: float
    frames: int
    best_score: float


def summarise_tracks(sightings: Sequence[Sighting]) -> list[TrackSummary]:
    """One summary per track id, sorted by id.

    Args:
        sightings: The tracked detections of one video, in any order.

    Returns:
        The tracks: class by majority (ties: highest total score, then name), best frame by score
        (ties: the earliest).
    """
    by_id: dict[int, list[Sighting]] = defaultdict(list)
    for s in sightings:
        by_id[s.track_id].append(s)
    out = []
    for track_id in sorted(by_id):
        seen = sorted(by_id[track_id], key=lambda s: s.t_s)
        votes: dict[str, tuple[int, float]] = {}
        for s in seen:
            n, total = votes.get(s.class_name, (0, 0.0))
            votes[s.class_name] = (n + 1, total + s.score)
        class_name = min(votes, key=lambda c: (-votes[c][0], -votes[c][1], c))
        best = max(seen, key=lambda s: (s.score, -s.t_s))
        out.append(
            TrackSummary(
                track_id=track_id,
                class_name=class_name,
                first_seen_s=seen[0].t_s,
                last_seen_s=seen[-1].t_s,
                best_seen_s=best.t_s,
                frames=len({s.t_s for s in seen}),
                best_score=best.score,
            )
        )
    return out


def nearest_rows(times_s: npt.ArrayLike, frame_times_s: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Index of the frame time nearest to each time (the earlier frame on ties); -1 when there is none.

    Args:
        times_s: The times to place, seconds.
        frame_times_s: The candidate frame times, seconds, in any order.

    Returns:
        Indices into ``frame_times_s``, shaped like ``times_s``.
    """
    t = np.asarray(times_s, dtype=np.float64)
    frames = np.asarray(frame_times_s, dtype=np.float64)
    if frames.size == 0:
        return np.full(t.shape, -1, dtype=np.intp)
    order = np.argsort(frames, kind="stable")
    ordered = frames[order]
    right = np.clip(np.searchsorted(ordered, t, side="left"), 0, ordered.size - 1)
    left = np.clip(right - 1, 0, ordered.size - 1)
    pick = np.where(np.abs(t - ordered[left]) <= np.abs(ordered[right] - t), left, right)
    return np.asarray(order[pick], dtype=np.intp)


def track_video(
    path: Path,
    detector: Detector,
    tracker: FrameTracker,
    every_s: float,
    batch_size: int = 8,
) -> list[Sighting]:
    """Detect and track the items of one video, reading a frame every ``every_s`` seconds in order.

    Args:
        path: The video.
        detector: The detector (the run's own).
        tracker: A fresh tracker for this video.
        every_s: Seconds between tracked frames.
        batch_size: Frames per detector call (the tracker still sees them one by one, in order).

    Returns:
        Every detection the tracker put on a track.

    Raises:
        IngestError: The video cannot be opened.
    """
    from plastic_hotspots.detector.video import iter_frames

    sightings: list[Sighting] = []
    batch: list[tuple[float, npt.NDArray[np.uint8]]] = []

    def flush() -> None:
        results = detector.predict([image for _, image in batch])
        for (t_s, image), dets in zip(batch, results, strict=True):
            for det, track_id in zip(dets, tracker.update(dets, image), strict=True):
                if track_id is not None:
                    sightings.append(Sighting(track_id, t_s, det.class_name, det.score, det.box))
        batch.clear()

    for frame in iter_frames(path, every_s):
        batch.append(frame)
        if len(batch) >= max(1, batch_size):
            flush()
    if batch:
        flush()
    return sightings


def _frame_time(key: str) -> float:
    """Video time of a sampled frame from its key (``path#t=0001.500``)."""
    return float(key.rsplit("#t=", 1)[1])


def _video_start(path: Path, ingest: IngestOptions) -> datetime | None:
    from plastic_hotspots.detector.video import probe

    start = ingest.video_start or probe(path).created_at
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start


def count_unique_items(
    images: pd.DataFrame,
    detector: Detector,
    classes: list[str],
    ingest: IngestOptions,
    settings: TrackingSettings,
    *,
    batch_size: int = 8,
    make_tracker: Callable[[], FrameTracker] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Track the items of every video in a run's images table; count each once.

    Args:
        images: The merged images table of the run (one row per photo, sampled frame or tile).
        detector: The run's detector.
        classes: Class names, in the order of the ``n_<class>`` columns.
        ingest: The run's ingest options (GPX track, video start, clock offset).
        settings: The tracking step and tracker.
        batch_size: Frames per detector call.
        make_tracker: Builds a fresh tracker per video; default Ultralytics' ByteTrack
            (:class:`plastic_hotspots.detector.yolo.ByteTracker`).

    Returns:
        The tracks table (:data:`TRACK_COLUMNS`, one row per track, ``lon``/``lat`` NaN without a
        position) and the images table with ``unique_items`` and ``unique_n_<class>`` added (NaN on
        rejected rows).
    """
    if make_tracker is None:
        from plastic_hotspots.detector import yolo

        make_tracker = lambda: yolo.ByteTracker(settings.tracker)  # noqa: E731
    images = images.copy()
    ok = (images["status"] == "ok").to_numpy()
    videos = (images["kind"] == "video_frame").to_numpy()
    unique = np.where(ok & ~videos, images["items"].to_numpy(dtype=np.float64, na_value=np.nan), 0.0)
    per_class = {
        name: np.where(ok & ~videos, images[f"n_{name}"].to_numpy(dtype=np.float64, na_value=np.nan), 0.0)
        for name in classes
    }
    track = None
    if ingest.gpx is not None:
        from plastic_hotspots.detector.gpx import read_gpx

        track = read_gpx(ingest.gpx)
    rows: list[dict[str, Any]] = []
    for video in sorted(set(images.loc[videos, "path"].astype(str))):
        path = Path(video)
        try:
            summaries = summarise_tracks(
                track_video(path, detector, make_tracker(), settings.every_s, batch_size)
            )
            start = _video_start(path, ingest)
        except IngestError:
            continue  # its sampled frames are rejected already; the rejects table says why
        candidates = np.flatnonzero(videos & ok & (images["path"].astype(str) == video).to_numpy())
        frame_times = [_frame_time(str(k)) for k in images["image"].to_numpy()[candidates]]
        nearest = nearest_rows([s.best_seen_s for s in summaries], frame_times)
        for summary, pick in zip(summaries, nearest, strict=True):
            moment = start + timedelta(seconds=summary.best_seen_s + ingest.clock_offset_s) if start else None
            position = track.position_at(moment) if track is not None and moment is not None else None
            counted = position is not None and pick >= 0
            row = candidates[pick] if counted else None
            if row is not None:
                unique[row] += 1
                if summary.class_name in per_class:
                    per_class[summary.class_name][row] += 1
            rows.append(
                {
                    "track": video,
                    "track_id": summary.track_id,
                    "class_name": summary.class_name,
                    "first_seen_s": summary.first_seen_s,
                    "last_seen_s": summary.last_seen_s,
                    "best_seen_s": summary.best_seen_s,
                    "frames": summary.frames,
                    "best_score": summary.best_score,
                    "captured_at": moment.isoformat() if moment is not None else None,
                    "lon": position[0] if position is not None else np.nan,
                    "lat": position[1] if position is not None else np.nan,
                    "image": str(images["image"].iloc[row]) if row is not None else None,
                    "counted": counted,
                }
            )
    images["unique_items"] = np.where(ok, unique, np.nan)
    for name in classes:
        images[f"unique_n_{name}"] = np.where(ok, per_class[name], np.nan)
    tracks = pd.DataFrame(rows, columns=list(TRACK_COLUMNS))
    return tracks.astype({"track_id": "int64", "frames": "int64", "counted": "bool"}), images
