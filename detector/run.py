"""``plastic-hotspots detect``: run the detector over many images, resumably, into GeoParquet.

Work is committed in chunks: every ``chunk_size`` images, the detections and the per-image rows of
that chunk are written to ``<out>.parts/`` (temporary file + rename, images part last). A run that is
interrupted (Ctrl-C, ``kill -9``, power loss) is resumed with ``resume=True``: images whose chunk was
committed are skipped, the rest are done, so no image is lost and none is counted twice. When every
image is done the chunks are merged into the outputs and the parts folder is removed.

Outputs, for ``--out detections.parquet``:

* ``detections.parquet``: one row per detection (GeoParquet, EPSG:4326).
* ``detections.images.parquet``: one row per image, frame or tile (position, capture time, size,
  ``items`` and ``n_<class>`` counts, ``status``, ``reason``); usable as a basin's ``observations``.
* ``detections.rejects.csv``: the rejected inputs with the reason.
* optionally ``detections.gpkg`` with the layers ``detections``, ``images`` and ``rejects``.

Each file carries the provenance (model name and hash, parameters, code version).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from detector.errors import ConfigError, IngestError
from detector.ingest import IngestOptions, LoadedImage, WorkItem, discover, load, pixel_to_lonlat
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.progress import progress_bar
from plastic_hotspots.provenance import make_provenance
from plastic_hotspots.records import BBox, Detection

EXIT_OK = 0
EXIT_REJECTS = 3

DETECTION_COLUMNS = (
    "image", "class_name", "score", "x1", "y1", "x2", "y2", "lon", "lat", "location_error_m",
)  # fmt: skip


class Detector(Protocol):
    """What the runner needs from a detector (``detector.yolo.YoloDetector`` provides it)."""

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


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a detection run works through its inputs.

    Attributes:
        chunk_size: Images per committed chunk (what a crash can cost, at most).
        batch_size: Images per model call.
        workers: Threads decoding images ahead of the model (0: decode between model calls).
        resume: Continue an interrupted run into the same output.
        overwrite: Throw away an interrupted run's parts and start again.
        gpkg: Also write a GeoPackage beside the GeoParquet.
    """

    chunk_size: int = 256
    batch_size: int = 8
    workers: int = 1
    resume: bool = False
    overwrite: bool = False
    gpkg: bool = False


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did."""

    images: int
    rejected: int
    detections: int
    skipped_done: int
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every input was used, 3 when some were rejected."""
        return EXIT_REJECTS if self.rejected else EXIT_OK


def output_paths(out: Path) -> dict[str, Path]:
    """The files a run writes for ``--out out``."""
    stem = out.with_suffix("")
    return {
        "detections": out,
        "images": stem.with_name(stem.name + ".images.parquet"),
        "rejects": stem.with_name(stem.name + ".rejects.csv"),
        "gpkg": stem.with_suffix(".gpkg"),
        "parts": stem.with_name(stem.name + ".parts"),
    }


def _run_signature(sources: Sequence[Path], options: IngestOptions, detector: Detector) -> dict[str, Any]:
    opts = {k: (str(v) if v is not None else None) for k, v in asdict(options).items()}
    return {
        "sources": [str(Path(s).resolve()) for s in sources],
        "ingest": opts,
        "model": detector.model_version,
        "classes": [detector.names[k] for k in sorted(detector.names)],
    }


def _prepare_parts(parts: Path, signature: dict[str, Any], run: RunOptions) -> set[str]:
    """Create or reopen the parts folder; return the keys already committed."""
    manifest = parts / "run.json"
    if parts.exists():
        if run.overwrite:
            shutil.rmtree(parts)
        elif not run.resume:
            raise ConfigError(
                f"an interrupted run left {parts}",
                hint="add --resume to continue it, or --overwrite to start again",
            )
        elif manifest.is_file():
            previous = json.loads(manifest.read_text(encoding="utf-8"))
            if previous != signature:
                changed = sorted(k for k in signature if previous.get(k) != signature[k])
                raise ConfigError(
                    f"--resume with different settings than the interrupted run ({', '.join(changed)})",
                    hint="resume with the same sources, options and model, or use --overwrite",
                )
    parts.mkdir(parents=True, exist_ok=True)
    if not manifest.is_file():
        with atomic_path(manifest) as tmp:
            tmp.write_text(json.dumps(signature, indent=1), encoding="utf-8")
    done: set[str] = set()
    import pyarrow.parquet as pq

    for images_part in sorted(parts.glob("images-*.parquet")):
        done.update(pq.read_table(images_part, columns=["image"]).column("image").to_pylist())
    # Detection parts whose images part never landed belong to an uncommitted chunk.
    committed = {p.name.removeprefix("images-") for p in parts.glob("images-*.parquet")}
    for det_part in parts.glob("detections-*.parquet"):
        if det_part.name.removeprefix("detections-") not in committed:
            det_part.unlink()
    return done


def _image_row(loaded: LoadedImage, dets: list[Detection], classes: list[str]) -> dict[str, Any]:
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


def _reject_row(item: WorkItem, error: IngestError, classes: list[str]) -> dict[str, Any]:
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


def _detection_rows(loaded: LoadedImage, dets: list[Detection]) -> list[dict[str, Any]]:
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


def _iter_loaded(
    items: Sequence[WorkItem], options: IngestOptions, workers: int
) -> Iterator[tuple[WorkItem, LoadedImage | IngestError]]:
    """Load items on a thread pool, a bounded number ahead, yielding them in order."""
    if workers <= 0:  # decode in this thread, between model calls
        for item in items:
            try:
                yield item, load(item, options)
            except IngestError as exc:
                yield item, exc
        return
    ahead = max(2, workers * 4)

    def task(item: WorkItem) -> LoadedImage | IngestError:
        try:
            return load(item, options)
        except IngestError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        queue: list[tuple[WorkItem, Future[LoadedImage | IngestError]]] = []
        it = iter(items)
        for item in it:
            queue.append((item, pool.submit(task, item)))
            if len(queue) >= ahead:
                break
        while queue:
            item, fut = queue.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                queue.append((nxt, pool.submit(task, nxt)))
            yield item, fut.result()


class _ChunkWriter:
    """Buffers rows and commits them as numbered chunk files."""

    def __init__(self, parts: Path) -> None:
        self.parts = parts
        existing = [int(p.stem.split("-")[1]) for p in parts.glob("images-*.parquet")]
        self.next_index = max(existing, default=0) + 1
        self.images: list[dict[str, Any]] = []
        self.detections: list[dict[str, Any]] = []

    def commit(self) -> None:
        if not self.images:
            return
        import pandas as pd

        name = f"{self.next_index:06d}.parquet"
        dets = pd.DataFrame(self.detections, columns=list(DETECTION_COLUMNS))
        imgs = pd.DataFrame(self.images)
        with atomic_path(self.parts / f"detections-{name}") as tmp:
            dets.to_parquet(tmp, index=False)
        with atomic_path(self.parts / f"images-{name}") as tmp:
            imgs.to_parquet(tmp, index=False)
        self.next_index += 1
        self.images.clear()
        self.detections.clear()


def run_detection(
    sources: Sequence[Path],
    out: Path,
    detector: Detector,
    *,
    ingest: IngestOptions | None = None,
    run: RunOptions | None = None,
    parameters: dict[str, str | int | float | bool | None] | None = None,
) -> RunSummary:
    """Detect litter in every image, video frame and raster tile under ``sources``.

    Args:
        sources: Files and folders (searched recursively).
        out: The detections GeoParquet to write; the other outputs go beside it.
        detector: A loaded detector.
        ingest: How inputs are read and geotagged.
        run: Chunking, batching, resume and output options.
        parameters: Extra parameters to record in the provenance (e.g. backend, imgsz, conf).

    Returns:
        Counts and the paths written.
    """
    ingest = ingest or IngestOptions()
    run = run or RunOptions()
    paths = output_paths(out)
    classes = [detector.names[k] for k in sorted(detector.names)]
    signature = _run_signature(sources, ingest, detector)
    items = discover(sources, ingest)
    if not items:
        raise ConfigError(
            f"no images, videos or rasters found in {', '.join(str(s) for s in sources)}",
            hint="point detect at image files or folders (.jpg .png .tif, .mp4 .mov with --gpx)",
        )
    done = _prepare_parts(paths["parts"], signature, run)
    todo = [item for item in items if item.key not in done]
    provenance = make_provenance(
        "detector.detect",
        parameters={"chunk_size": run.chunk_size, "batch_size": run.batch_size, **(parameters or {})},
        inputs=[str(s) for s in sources],
        model=detector.model_version,
    )
    writer = _ChunkWriter(paths["parts"])
    with progress_bar(rate_unit="img") as bar:
        task = bar.add_task("Detecting", total=len(items), completed=len(items) - len(todo))
        batch: list[LoadedImage] = []

        def flush() -> None:
            if not batch:
                return
            results = detector.predict([b.image for b in batch])
            for loaded, dets in zip(batch, results, strict=True):
                writer.images.append(_image_row(loaded, dets, classes))
                writer.detections.extend(_detection_rows(loaded, dets))
            bar.advance(task, len(batch))
            batch.clear()

        for item, loaded in _iter_loaded(todo, ingest, run.workers):
            if isinstance(loaded, IngestError):
                writer.images.append(_reject_row(item, loaded, classes))
                bar.advance(task, 1)
            else:
                batch.append(loaded)
                if len(batch) >= run.batch_size:
                    flush()
            if len(writer.images) + len(batch) >= run.chunk_size:
                flush()
                writer.commit()
        flush()
        writer.commit()
    from detector.outputs import merge_parts

    summary = merge_parts(paths, provenance, gpkg=run.gpkg)
    return RunSummary(
        images=summary.images,
        rejected=summary.rejected,
        detections=summary.detections,
        skipped_done=len(done),
        outputs={k: v for k, v in paths.items() if k != "parts" and v.exists()},
    )
