"""One chunk of a detection run: decode its inputs, run the detector, build the rows a part stores.

The same :func:`detect_chunk` serves a run in one process and a run on Dask workers (see
:mod:`plastic_hotspots.detector.workers`), so both give the same rows for the same chunk. A row is a plain
mapping of
column to value, as the GeoParquet parts store it:

* an images row per input (``status`` ``ok`` with position, size and counts, or ``rejected`` with the
  reason);
* a detections row per detected item, with its ground position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import IngestError
from plastic_hotspots.detector.ingest import IngestOptions, LoadedImage, WorkItem, load, pixel_to_lonlat
from plastic_hotspots.litterlist import COLUMN, litter_list_codes
from plastic_hotspots.records import BBox, Detection

DETECTION_COLUMNS = (
    "image", "class_name", COLUMN, "score", "x1", "y1", "x2", "y2", "lon", "lat", "location_error_m",
)  # fmt: skip


class Detector(Protocol):
    """What a run needs from a detector (``plastic_hotspots.detector.predictor.YoloDetector`` provides it)."""

    @property
    def names(self) -> dict[int, str]:
        """Class names by id."""
        ...

    @property
    def model_version(self) -> str:
        """Model name and short hash."""
        ...

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        """Detections per image."""
        ...


@dataclass(slots=True)
class ChunkRows:
    """The rows of one chunk: one images row per input, one detections row per detected item."""

    images: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)


Loaded = tuple[WorkItem, LoadedImage | IngestError]


def detect_chunk(
    loaded: Iterable[Loaded],
    detector: Detector,
    classes: list[str],
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> ChunkRows:
    """Rows of a chunk's inputs, read (or rejected) already, detecting ``batch_size`` images a call.

    Args:
        loaded: The chunk's items with their pixels, or the error that rejects them.
        detector: The detector.
        classes: Class names, in the order of the ``n_<class>`` columns.
        batch_size: Images per model call.
        on_progress: Called with the number of inputs finished, as they finish.
    """
    rows = ChunkRows()
    batch: list[LoadedImage] = []

    def flush() -> None:
        if not batch:
            return
        results = detector.predict([b.image for b in batch])
        for image, dets in zip(batch, results, strict=True):
            rows.images.append(image_row(image, dets, classes))
            rows.detections.extend(detection_rows(image, dets))
        if on_progress is not None:
            on_progress(len(batch))
        batch.clear()

    for item, image in loaded:
        if isinstance(image, IngestError):
            rows.images.append(reject_row(item, image, classes))
            if on_progress is not None:
                on_progress(1)
        else:
            batch.append(image)
            if len(batch) >= batch_size:
                flush()
    flush()
    return rows


def iter_loaded(items: Sequence[WorkItem], options: IngestOptions, threads: int) -> Iterator[Loaded]:
    """Read items, ``threads`` at a time and a bounded number ahead, yielding them in order.

    With ``threads`` 0, each item is read in the calling thread when it is asked for.
    """
    if threads <= 0:
        for item in items:
            yield item, _load(item, options)
        return
    ahead = max(2, threads * 4)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        queue: list[tuple[WorkItem, Future[LoadedImage | IngestError]]] = []
        it = iter(items)
        for item in it:
            queue.append((item, pool.submit(_load, item, options)))
            if len(queue) >= ahead:
                break
        while queue:
            item, fut = queue.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                queue.append((nxt, pool.submit(_load, nxt, options)))
            yield item, fut.result()


def _load(item: WorkItem, options: IngestOptions) -> LoadedImage | IngestError:
    try:
        return load(item, options)
    except IngestError as exc:
        return exc


def image_row(loaded: LoadedImage, dets: list[Detection], classes: list[str]) -> dict[str, Any]:
    """The images row of a used input: position, time, size and the count of each class."""
    rec = loaded.record
    counts = dict.fromkeys(classes, 0)
    for d in dets:
        counts[d.class_name] = counts.get(d.class_name, 0) + 1
    return {
        "image": loaded.item.key,
        "path": str(loaded.item.path),
        "kind": loaded.item.kind,
        "track": _track_of(loaded.item),
        "lon": rec.lon,
        "lat": rec.lat,
        "captured_at": rec.captured_at.isoformat() if rec.captured_at else None,
        "heading_deg": rec.heading_deg,
        "location_error_m": rec.location_error_m,
        "width": rec.width,
        "height": rec.height,
        "items": len(dets),
        **{f"n_{name}": counts[name] for name in classes},
        "status": "ok",
        "reason": None,
        "message": None,
    }


def reject_row(item: WorkItem, error: IngestError, classes: list[str]) -> dict[str, Any]:
    """The images row of a rejected input: the reason and the message, no position or counts."""
    return {
        "image": item.key,
        "path": str(item.path),
        "kind": item.kind,
        "track": _track_of(item),
        "lon": None,
        "lat": None,
        "captured_at": None,
        "heading_deg": None,
        "location_error_m": None,
        "width": None,
        "height": None,
        "items": None,
        **{f"n_{name}": None for name in classes},
        "status": "rejected",
        "reason": error.reason,
        "message": error.message,
    }


def _track_of(item: WorkItem) -> str:
    """Survey unit of an item: its video or raster file, or the folder of a photo."""
    return str(item.path if item.kind != "photo" else item.path.parent)


def detection_rows(loaded: LoadedImage, dets: list[Detection]) -> list[dict[str, Any]]:
    """One row per detection: the box in full-image pixels and its ground position."""
    rows = []
    rec = loaded.record
    sx, sy = loaded.scale
    for found in dets:
        d = found
        if (sx, sy) != (1.0, 1.0):  # boxes of a reduced decode, in full-image pixels
            box = BBox(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy)
            d = Detection(box, d.class_name, d.score)
        cx, cy = (d.box.x1 + d.box.x2) / 2, (d.box.y1 + d.box.y2) / 2
        ground = pixel_to_lonlat(loaded, cx, cy)
        lon, lat = ground if ground is not None else (rec.lon, rec.lat)
        rows.append(
            {
                "image": loaded.item.key,
                "class_name": d.class_name,
                COLUMN: litter_list_codes(d.class_name),
                "score": d.score,
                "x1": d.box.x1,
                "y1": d.box.y1,
                "x2": d.box.x2,
                "y2": d.box.y2,
                "lon": lon,
                "lat": lat,
                "location_error_m": rec.location_error_m,
            }
        )
    return rows
