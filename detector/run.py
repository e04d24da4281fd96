"""``plastic-hotspots detect``: run the detector over many images, resumably, into GeoParquet.

Work is committed in chunks: every ``chunk_size`` images, the detections and the per-image rows of
that chunk are written to ``<out>.parts/`` (temporary file + rename, images part last). A run that is
interrupted (Ctrl-C, ``kill -9``, power loss) is resumed with ``resume=True``: images whose chunk was
committed are skipped, the rest are done, so no image is lost and none is counted twice. When every
image is done the chunks are merged into the outputs and the parts folder is removed. ``resume=True`` on
a finished output reopens it as one committed chunk: only images it has not seen are detected.

Outputs, for ``--out detections.parquet``:

* ``detections.parquet``: one row per detection (GeoParquet, EPSG:4326).
* ``detections.images.parquet``: one row per image, frame or tile (position, capture time, size,
  ``items`` and ``n_<class>`` counts, ``status``, ``reason``); usable as a basin's ``observations``.
* ``detections.rejects.csv``: the rejected inputs with the reason.
* optionally ``detections.gpkg`` with the layers ``detections``, ``images`` and ``rejects``.
* with tracking (``--track-items``), ``detections.tracks.parquet``: one row per item followed through a
  video, counted once (see :mod:`plastic_hotspots.detector.tracking`); the images table then also has
  ``unique_items`` and ``unique_n_<class>``, which the map stage counts instead of ``items``.

Each file carries the provenance (model name and hash, parameters, code version).

With a :class:`~plastic_hotspots.cluster.Cluster`, the chunks go to Dask workers instead
(:class:`plastic_hotspots.detector.workers.ChunkTask`): each worker loads the model once and sends back the
rows of its
chunks, and this process alone commits them, in the order they come back, each chunk once. A worker
that dies costs only its unfinished chunk, which Dask runs again on another worker; if this process
dies, ``resume=True`` goes on from the committed chunks as above, with or without workers. The chunks
are the same as in one process, so the merged outputs are the same row for row.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plastic_hotspots.detector.chunks import DETECTION_COLUMNS, ChunkRows, Detector, detect_chunk, iter_loaded
from plastic_hotspots.detector.ingest import IngestOptions, discover
from plastic_hotspots.detector.settings import TrackingSettings
from plastic_hotspots.detector.workers import ChunkTask, ShippableDetector, worker_version
from plastic_hotspots.errors import ClusterError, ConfigError
from plastic_hotspots.geoio import atomic_path, process_alive
from plastic_hotspots.progress import progress_bar
from plastic_hotspots.provenance import make_provenance

if TYPE_CHECKING:
    from plastic_hotspots.cluster import Cluster
    from plastic_hotspots.detector.tracking import FrameTracker
    from plastic_hotspots.records import Provenance

__all__ = ["DETECTION_COLUMNS", "EXIT_OK", "EXIT_REJECTS", "Detector", "RunOptions", "RunSummary",
           "output_paths", "run_detection"]  # fmt: skip

EXIT_OK = 0
EXIT_REJECTS = 3


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a detection run works through its inputs.

    Attributes:
        chunk_size: Images per committed chunk (what a crash can cost, at most).
        batch_size: Images per model call.
        decode_threads: Threads reading images ahead of the model (0: read between model calls), in a
            run in one process; a worker reads its chunk's images one by one.
        resume: Continue an interrupted run into the same output, or add to a finished one only the
            images it has not seen.
        overwrite: Replace a finished run in the same output, or throw away an interrupted run's parts.
        gpkg: Also write a GeoPackage beside the GeoParquet.
    """

    chunk_size: int = 256
    batch_size: int = 8
    decode_threads: int = 1
    resume: bool = False
    overwrite: bool = False
    gpkg: bool = False

    def __post_init__(self) -> None:
        for option, value, least in (
            ("--chunk-size", self.chunk_size, 1), ("--batch-size", self.batch_size, 1),
            ("--decode-threads", self.decode_threads, 0),
        ):  # fmt: skip
            if value < least:
                raise ConfigError(f"{option} must be at least {least}, got {value}", hint=f"fix {option}")


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
        "tracks": stem.with_name(stem.name + ".tracks.parquet"),
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


def _reopen_finished(paths: dict[str, Path], signature: dict[str, Any], detector: Detector) -> None:
    """Make a finished run's outputs its committed parts again, so that ``--resume`` adds only new images.

    Its images and detections become one committed chunk (the images part last, as a commit); the
    images it has already seen, rejected ones included, are then skipped, and the merge at the end
    writes the outputs of both runs together. Killed while reopening, the outputs are untouched and
    the next ``--resume`` starts again from them.

    Raises:
        ConfigError: The finished run used another model or other classes (its rows and the new ones
            would not be comparable).
    """
    import geopandas as gpd

    from plastic_hotspots.geoio import read_provenance

    try:
        earlier = read_provenance(paths["detections"]).model
    except (KeyError, ValueError):
        earlier = None
    if earlier is not None and earlier != detector.model_version:
        raise ConfigError(
            f"--resume adds images to {paths['detections']}, which another model found ({earlier}; this "
            f"run: {detector.model_version})",
            hint="resume with the same --model, or --overwrite to detect every image again",
        )
    images = _without_geometry(gpd.read_parquet(paths["images"]))
    images = images.drop(columns=[c for c in images.columns if c.startswith("unique_")])  # tracking redoes
    detections = _without_geometry(gpd.read_parquet(paths["detections"]))
    parts = paths["parts"]
    parts.mkdir(parents=True)
    with atomic_path(parts / "run.json") as tmp:
        tmp.write_text(json.dumps(signature, indent=1), encoding="utf-8")
    with atomic_path(parts / "detections-000000.parquet") as tmp:
        detections.to_parquet(tmp, index=False)
    with atomic_path(parts / "images-000000.parquet") as tmp:  # last: it marks the chunk committed
        images.to_parquet(tmp, index=False)


def _without_geometry(frame: Any) -> Any:
    """A GeoDataFrame's columns as a plain DataFrame (the parts hold lon and lat, not geometry)."""
    import pandas as pd

    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


# Columns of the images table that hold numbers; all-empty in a part, they are stored as float64, so the
# merged table's types do not depend on how the inputs fell into chunks.
_NUMERIC = ("lon", "lat", "heading_deg", "location_error_m", "width", "height", "items")


class _ChunkWriter:
    """Commits the rows of each chunk as a pair of numbered part files."""

    def __init__(self, parts: Path) -> None:
        self.parts = parts
        existing = [int(p.stem.split("-")[1]) for p in parts.glob("images-*.parquet")]
        self.next_index = max(existing, default=0) + 1

    def commit(self, rows: ChunkRows) -> None:
        if not rows.images:
            return
        import pandas as pd

        name = f"{self.next_index:06d}.parquet"
        dets = pd.DataFrame(rows.detections, columns=list(DETECTION_COLUMNS))
        imgs = pd.DataFrame(rows.images)
        for column in imgs.columns:
            if (column in _NUMERIC or column.startswith("n_")) and imgs[column].isna().all():
                imgs[column] = imgs[column].astype("float64")
        with atomic_path(self.parts / f"detections-{name}") as tmp:
            dets.to_parquet(tmp, index=False)
        with atomic_path(self.parts / f"images-{name}") as tmp:  # last: it marks the chunk committed
            imgs.to_parquet(tmp, index=False)
        self.next_index += 1


def run_detection(
    sources: Sequence[Path],
    out: Path,
    detector: Detector,
    *,
    ingest: IngestOptions | None = None,
    run: RunOptions | None = None,
    parameters: dict[str, str | int | float | bool | None] | None = None,
    cluster: Cluster | None = None,
    tracking: TrackingSettings | None = None,
    make_tracker: Callable[[], FrameTracker] | None = None,
) -> RunSummary:
    """Detect litter in every image, video frame and raster tile under ``sources``.

    Args:
        sources: Files and folders (searched recursively).
        out: The detections GeoParquet to write; the other outputs go beside it.
        detector: A loaded detector.
        ingest: How inputs are read and geotagged.
        run: Chunking, batching, resume and output options.
        parameters: Extra parameters to record in the provenance (e.g. backend, imgsz, conf), over those
            the detector's own ``parameters()`` gives (a YoloDetector: its resolved backend and precision,
            why ``auto`` chose them, the int8 calibration set).
        cluster: Dask workers to spread the chunks over (see :mod:`plastic_hotspots.cluster`); each
            builds its own copy of ``detector`` from its
            :meth:`~plastic_hotspots.detector.workers.ShippableDetector.spec`
            and returns the rows, which this process commits. ``None`` runs everything here.
        tracking: With ``enabled``, follow the items of every video with a tracker once the frames are
            done (in this process) and count each once: writes the tracks table and adds
            ``unique_items`` to the images table.
        make_tracker: Builds a fresh tracker per video (default: Ultralytics' ByteTrack).

    Returns:
        Counts and the paths written.

    Raises:
        ConfigError: No inputs, another living run into ``out``, a finished ``out`` without
            ``overwrite``, an interrupted run without ``resume`` or ``overwrite``, a resume with
            other settings, or a detector that cannot be sent to workers.
        ClusterError: The workers run another version of plastic-hotspots, or kept dying on a chunk.
    """
    run = run or RunOptions()
    with output_lock(out):
        return _run_detection(
            sources,
            out,
            detector,
            ingest or IngestOptions(),
            run,
            parameters,
            cluster,
            tracking,
            make_tracker,
        )


def output_lock_path(out: Path) -> Path:
    """The lock a running ``detect`` holds beside its ``--out``."""
    stem = Path(out).with_suffix("")
    return stem.with_name(stem.name + ".lock")


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the lock of ``--out`` for a run: a second run into it is refused while the first lives.

    The lock file names its process; a lock whose process is gone (a crash, ``kill -9``) is stale and
    taken over.

    Raises:
        ConfigError: Another living ``detect`` holds the lock.
    """
    lock = output_lock_path(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = lock.read_text(encoding="utf-8").strip() if lock.is_file() else ""
            host, _, pid = holder.partition(":")
            if pid.isdigit() and host == socket.gethostname() and process_alive(int(pid)):
                raise ConfigError(
                    f"another detect run (process {pid}) is writing {out}",
                    hint="wait for it to finish, or give this run another --out",
                ) from None
            lock.unlink(missing_ok=True)  # stale: its run died
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{socket.gethostname()}:{os.getpid()}\n")
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _run_detection(
    sources: Sequence[Path],
    out: Path,
    detector: Detector,
    ingest: IngestOptions,
    run: RunOptions,
    parameters: dict[str, str | int | float | bool | None] | None,
    cluster: Cluster | None,
    tracking: TrackingSettings | None,
    make_tracker: Callable[[], FrameTracker] | None,
) -> RunSummary:
    """:func:`run_detection` with the lock of ``out`` held."""
    paths = output_paths(out)
    classes = [detector.names[k] for k in sorted(detector.names)]
    signature = _run_signature(sources, ingest, detector)
    if paths["detections"].exists() and not paths["parts"].exists() and not run.overwrite:
        if not run.resume:
            raise ConfigError(
                f"{out} holds a finished detect run",
                hint="add --resume to add only the images it has not seen, --overwrite to replace it, or "
                "give this run another --out",
            )
        _reopen_finished(paths, signature, detector)
    items = discover(sources, ingest, own_outputs=[*paths.values(), output_lock_path(out)])
    if not items:
        raise ConfigError(
            f"no images, videos or rasters found in {', '.join(str(s) for s in sources)}",
            hint="point detect at image files or folders (.jpg .png .tif, .mp4 .mov with --gpx)",
        )
    spec = None
    if cluster is not None:
        if not isinstance(detector, ShippableDetector):
            raise ConfigError(
                f"the detector {detector.model_version} cannot be sent to Dask workers (it has no spec())",
                hint="use plastic_hotspots.detector.predictor.YoloDetector, or run without a cluster",
            )
        spec = detector.spec()
    done = _prepare_parts(paths["parts"], signature, run)
    todo = [item for item in items if item.key not in done]
    # The same chunks in one process and on workers, so both commit the same parts.
    chunks = [todo[k : k + run.chunk_size] for k in range(0, len(todo), run.chunk_size)]
    tracking = tracking or TrackingSettings()
    tracked: dict[str, str | int | float | bool | None] = (
        {"track_items": True, "track_every_s": tracking.every_s, "tracker": tracking.tracker}
        if tracking.enabled
        else {}
    )
    provenance = make_provenance(
        "detector.detect",
        parameters={
            "chunk_size": run.chunk_size,
            "batch_size": run.batch_size,
            **_detector_parameters(detector),
            **(parameters or {}),
            **tracked,
        },
        inputs=[str(s) for s in sources],
        model=detector.model_version,
    )
    writer = _ChunkWriter(paths["parts"])
    with progress_bar(rate_unit="img") as bar:
        task = bar.add_task("Detecting", total=len(items), completed=len(items) - len(todo))
        if cluster is None or spec is None:
            loaded = iter_loaded(todo, ingest, run.decode_threads)  # reads ahead across chunks
            for chunk in chunks:
                rows = detect_chunk(
                    islice(loaded, len(chunk)),
                    detector,
                    classes,
                    run.batch_size,
                    on_progress=lambda n: bar.advance(task, n),
                )
                writer.commit(rows)
        else:
            _check_workers(cluster)
            chunk_task = ChunkTask(spec, ingest, run.batch_size, tuple(classes), os.getcwd())
            committed: set[int] = set()
            for index, rows in cluster.map_unordered(chunk_task, chunks, name="detect-chunk"):
                if index in committed:  # a chunk run twice (a worker died after finishing it)
                    continue
                writer.commit(rows)
                committed.add(index)
                bar.advance(task, len(chunks[index]))
    from plastic_hotspots.detector.outputs import merge_parts

    summary = merge_parts(paths, provenance, gpkg=run.gpkg)
    paths["tracks"].unlink(missing_ok=True)  # never left over from an earlier run with tracking
    if tracking.enabled:
        _count_unique_items(paths, detector, classes, ingest, tracking, run, provenance, make_tracker)
    return RunSummary(
        images=summary.images,
        rejected=summary.rejected,
        detections=summary.detections,
        skipped_done=len(done),
        outputs={k: v for k, v in paths.items() if k != "parts" and v.exists()},
    )


def _count_unique_items(
    paths: dict[str, Path],
    detector: Detector,
    classes: list[str],
    ingest: IngestOptions,
    tracking: TrackingSettings,
    run: RunOptions,
    provenance: Provenance,
    make_tracker: Callable[[], FrameTracker] | None,
) -> None:
    """Track the videos' items; write the tracks table and the images table with ``unique_items``."""
    import geopandas as gpd

    from plastic_hotspots.detector.tracking import count_unique_items
    from plastic_hotspots.geoio import write_geoparquet

    images = gpd.read_parquet(paths["images"])
    tracks, images = count_unique_items(
        images, detector, classes, ingest, tracking, batch_size=run.batch_size, make_tracker=make_tracker
    )
    geometry = gpd.points_from_xy(tracks["lon"], tracks["lat"])
    geometry[tracks["lon"].isna().to_numpy()] = None
    write_geoparquet(
        gpd.GeoDataFrame(tracks, geometry=geometry, crs="EPSG:4326"), paths["tracks"], provenance
    )
    write_geoparquet(images, paths["images"], provenance)  # last: unique counts only once tracks exist


def _detector_parameters(detector: Detector) -> dict[str, Any]:
    """What the detector says of itself for the provenance (resolved backend, precision, calibration)."""
    own = getattr(detector, "parameters", None)
    return dict(own()) if callable(own) else {}


def _check_workers(cluster: Cluster) -> None:
    """Refuse workers that cannot run this version of plastic-hotspots."""
    from plastic_hotspots import __version__

    try:
        versions = cluster.run_on_workers(worker_version)
    except Exception as exc:  # whatever a worker raises unpickling a module it does not have
        raise ClusterError(
            f"the Dask workers cannot run plastic-hotspots ({type(exc).__name__}: {exc})",
            hint=f"install plastic-hotspots {__version__} with its extras on every worker: "
            f"pip install 'plastic-hotspots[detect,scale]=={__version__}'",
        ) from exc
    other = {addr: v for addr, v in versions.items() if v != __version__}
    if other:
        addr, version = next(iter(other.items()))
        raise ClusterError(
            f"{len(other)} Dask worker(s) run plastic-hotspots {version} (e.g. {addr}), "
            f"this process {__version__}",
            hint=f"install the same version on every worker: "
            f"pip install 'plastic-hotspots[detect,scale]=={__version__}'",
        )
