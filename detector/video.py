"""Video frames for detection: probing, choosing frame times, reading frames (OpenCV).

A survey video becomes one work item per sampled frame: every ``every_s`` seconds, and optionally only
after the camera moved ``every_m`` metres along its GPS track (so a stop at traffic lights does not
count the same litter fifty times). For counting each item once (``detect --track-items``),
:func:`iter_frames` reads a video's frames in order at a denser, fixed step. The start time of an
MP4/MOV comes from its ``mvhd`` box.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.errors import ConfigError

MAC_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)  # ISO-BMFF times count seconds from here


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a video file says about itself.

    Attributes:
        fps: Frames per second.
        frame_count: Number of frames.
        duration_s: ``frame_count / fps``.
        width: Frame width in pixels.
        height: Frame height in pixels.
        created_at: Creation time from the MP4/MOV header (UTC), if recorded.
    """

    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    created_at: datetime | None


def _boxes(f: BinaryIO, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload start, payload end)`` of the ISO-BMFF boxes from the current position to ``end``.

    Sizes of 1 (a 64-bit size follows) and 0 (to the end of the enclosing box) are understood; the
    walk stops at the first box whose size does not fit, so a truncated file yields what precedes it.
    """
    found: list[tuple[bytes, int, int]] = []
    while f.tell() + 8 <= end:
        start = f.tell()
        header = f.read(8)
        if len(header) < 8:
            break
        size, kind = struct.unpack(">I4s", header)
        payload = start + 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                break
            size = struct.unpack(">Q", large)[0]
            payload = start + 16
        elif size == 0:
            size = end - start
        if size < payload - start or start + size > end:
            break
        found.append((kind, payload, start + size))
        f.seek(start + size)
    return found


def mp4_creation_time(path: Path) -> datetime | None:
    """Creation time in the ``moov/mvhd`` box of an MP4/MOV file.

    ``mvhd`` version 0 stores it in 32 bits, version 1 in 64 bits, both as seconds since
    1904-01-01 UTC. Many cameras write their local clock there instead of UTC; ``clock_offset_s``
    in the ingest options corrects that.

    Args:
        path: The video file.

    Returns:
        The creation time (UTC), or ``None`` when the file has no ``moov/mvhd`` or records 0 (unknown).
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(0)
            for kind, start, end in _boxes(f, size):
                if kind != b"moov":
                    continue
                f.seek(start)
                for inner, istart, _iend in _boxes(f, end):
                    if inner != b"mvhd":
                        continue
                    f.seek(istart)
                    version = f.read(4)[0]
                    raw = f.read(8 if version == 1 else 4)
                    seconds = struct.unpack(">Q" if version == 1 else ">I", raw)[0]
                    return MAC_EPOCH + timedelta(seconds=seconds) if seconds else None
    except (OSError, struct.error, IndexError, OverflowError):
        return None
    return None


def probe(path: Path) -> VideoInfo:
    """Frame rate, length, size and creation time of a video.

    Args:
        path: The video file.

    Returns:
        What the file says about itself; ``duration_s`` is ``frame_count / fps``.

    Raises:
        IngestError: ``not_an_image`` when OpenCV cannot open the file or it has no frames.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise IngestError(
                "not_an_image", f"{path} is not a video OpenCV can open", "convert it to MP4 (H.264)"
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if count <= 0 or not fps > 0:
        raise IngestError("not_an_image", f"{path} has no video frames", "check the file plays")
    return VideoInfo(fps, count, count / fps, width, height, mp4_creation_time(path))


def sample_times(
    duration_s: float,
    every_s: float,
    *,
    every_m: float | None = None,
    distance_at: Callable[[float], float | None] | None = None,
) -> list[float]:
    """Times (seconds from the start) of the frames to detect on.

    Candidates are ``0, every_s, 2 * every_s, ...`` before ``duration_s``. With ``every_m`` and
    ``distance_at`` (distance travelled at a video time, ``None`` where unknown), a candidate is kept
    only once the camera moved ``every_m`` metres since the last kept frame; the first candidate with
    a known distance is always kept, and candidates with unknown distance are kept (they are rejected
    later for having no position, so the rejects table shows them).

    Args:
        duration_s: Length of the video, seconds.
        every_s: Seconds between candidate frames.
        every_m: Metres the camera must move between kept frames; ``None`` keeps every candidate.
        distance_at: Distance along the track (metres) at a video time, ``None`` or NaN where unknown.

    Returns:
        Increasing times in ``[0, duration_s)``, rounded to the microsecond.

    Raises:
        ConfigError: ``every_s`` or ``every_m`` is not a positive number.
    """
    if not (every_s > 0 and np.isfinite(every_s)):
        raise ConfigError(
            f"the video frame interval must be a positive number of seconds, got {every_s}",
            hint="pass e.g. --every-s 1",
        )
    if every_m is not None and not (every_m > 0 and np.isfinite(every_m)):
        raise ConfigError(
            f"the video frame spacing must be a positive number of metres, got {every_m}",
            hint="pass e.g. --every-m 5, or leave it out to sample by time only",
        )
    count = int(np.ceil(duration_s / every_s - 1e-9)) if duration_s > 0 and np.isfinite(duration_s) else 0
    times = [round(k * every_s, 6) for k in range(count)]
    if every_m is None or distance_at is None:
        return times
    kept: list[float] = []
    last: float | None = None
    for t in times:
        d = distance_at(t)
        if d is None or not np.isfinite(d):
            kept.append(t)
        elif last is None or d - last >= every_m:
            kept.append(t)
            last = d
    return kept


def read_frame(path: Path, t_s: float) -> npt.NDArray[np.uint8]:
    """The frame shown at ``t_s`` seconds, as ``(H, W, 3)`` RGB.

    The frame is found by index, ``round(t_s * fps)``: exact for constant-frame-rate videos, which
    is what cameras record.

    Args:
        path: The video file.
        t_s: Seconds from the start of the video.

    Returns:
        The frame's pixels, ``uint8`` RGB.

    Raises:
        IngestError: ``corrupt`` when the frame cannot be decoded.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 1.0
        index = round(t_s * fps)
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise IngestError(
            "corrupt", f"{path}: frame at {t_s:.3f} s cannot be decoded", "check the video plays"
        )
    rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(frame[:, :, ::-1])
    return rgb


def frame_step(fps: float, every_s: float) -> int:
    """Frames between two frames seen at ``every_s`` seconds apart: ``round(every_s * fps)``, at least 1.

    Args:
        fps: The video's frame rate.
        every_s: Seconds wanted between two frames.

    Returns:
        The step in frames.
    """
    return max(1, round(every_s * fps)) if fps > 0 and np.isfinite(fps) else 1


def iter_frames(path: Path, every_s: float) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
    """Every ``frame_step(fps, every_s)``-th frame of a video, in order, as ``(seconds, RGB pixels)``.

    Frames are read one after another (no seeking), the ones in between only grabbed, so a whole
    video is decoded once. The time of frame ``k`` is ``k / fps``, as in :func:`read_frame`.

    Args:
        path: The video file.
        every_s: Seconds between the frames yielded.

    Yields:
        ``(t_s, frame)`` with ``frame`` ``(H, W, 3)`` uint8 RGB; reading stops at the first frame that
        cannot be decoded.

    Raises:
        IngestError: ``not_an_image`` when OpenCV cannot open the file.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise IngestError(
                "not_an_image", f"{path} is not a video OpenCV can open", "convert it to MP4 (H.264)"
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 1.0
        step = frame_step(fps, every_s)
        index = 0
        while True:
            if index % step == 0:
                ok, frame = cap.read()
                if not ok or frame is None:
                    return
                yield index / fps, np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            elif not cap.grab():
                return
            index += 1
    finally:
        cap.release()
