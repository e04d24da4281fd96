"""What a Dask worker runs for ``detect``: a chunk of images in, its rows out.

The client sends each chunk as a :class:`ChunkTask` call. The task builds the detector from a
:class:`DetectorSpec` the first time a worker process needs it and keeps it in :data:`_DETECTORS`
(keyed by the spec: model file and hash, backend and settings, and the thread count; the last two
used), so each worker loads the model once however many chunks it runs. Tasks write nothing: the
rows go back to the client, which alone commits them, so a worker that dies only makes Dask run its
chunk again elsewhere.

Inference uses as many threads as the Dask worker has (``--threads-per-worker`` on a local cluster,
``dask worker --nthreads`` on an existing one); tasks running side by side in one worker take turns on
its one model.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.chunks import ChunkRows, Detector, detect_chunk, iter_loaded
from plastic_hotspots.detector.ingest import IngestOptions, WorkItem
from plastic_hotspots.errors import ConfigError
from plastic_hotspots.records import Detection


class DetectorSpec(Hashable, Protocol):
    """A picklable, hashable recipe for a detector, that a worker process builds for itself."""

    def load(self, threads: int) -> Detector:
        """Build the detector, running inference on ``threads`` threads."""
        ...


@runtime_checkable
class ShippableDetector(Detector, Protocol):
    """A detector that can say how to build itself again on a worker."""

    def spec(self) -> DetectorSpec:
        """The recipe of this detector."""
        ...


class _TakingTurns:
    """A detector shared by the tasks running side by side in one worker: one ``predict`` at a time."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._turn = threading.Lock()

    @property
    def names(self) -> dict[int, str]:
        return self._detector.names

    @property
    def model_version(self) -> str:
        return self._detector.model_version

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        with self._turn:
            return self._detector.predict(images)


_DETECTORS: dict[tuple[DetectorSpec, int], _TakingTurns] = {}
_LOADING = threading.Lock()
_KEEP = 2  # detectors a worker keeps: a long-lived worker serving run after run does not pile up models


def cached_detector(spec: DetectorSpec, threads: int) -> Detector:
    """This process's detector for ``spec``, built on first use with ``threads`` inference threads."""
    key = (spec, threads)
    with _LOADING:
        if key not in _DETECTORS:
            limit_threads(threads)
            _DETECTORS[key] = _TakingTurns(spec.load(threads))
            while len(_DETECTORS) > _KEEP:  # the oldest goes (once the tasks using it are done)
                del _DETECTORS[next(iter(_DETECTORS))]
        return _DETECTORS[key]


def limit_threads(threads: int) -> None:
    """Hold the numerical libraries of this process to ``threads`` threads (OpenMP, MKL, OpenCV)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """Detect one chunk of images on a worker; called with the chunk's items, returns its rows.

    Attributes:
        spec: How to build the detector.
        ingest: How inputs are read and geotagged.
        batch_size: Images per model call.
        classes: Class names, in the order of the ``n_<class>`` columns.
        cwd: The client's working folder, against which relative input paths were given.
    """

    spec: DetectorSpec
    ingest: IngestOptions
    batch_size: int
    classes: tuple[str, ...]
    cwd: str

    def __call__(self, items: Sequence[WorkItem]) -> ChunkRows:
        """The rows of ``items``, exactly as a run in one process makes them."""
        self._check_paths(items)
        from plastic_hotspots.cluster import current_worker_threads

        detector = cached_detector(self.spec, current_worker_threads() or 1)
        loaded = iter_loaded(items, self.ingest, threads=0)  # read one by one, between model calls
        return detect_chunk(loaded, detector, list(self.classes), self.batch_size)

    def _check_paths(self, items: Sequence[WorkItem]) -> None:
        if os.getcwd() == self.cwd:
            return
        relative = [str(p) for p in (self.ingest.sidecar, self.ingest.gpx) if p and not Path(p).is_absolute()]
        relative += [str(item.path) for item in items if not item.path.is_absolute()]
        if relative:
            raise ConfigError(
                f"the worker on {platform.node()} runs in {os.getcwd()}, not {self.cwd}, so it cannot find "
                f"the relative path {relative[0]}",
                hint="give detect absolute paths (on a file system every worker mounts at the same place)",
            )


def worker_version() -> str:
    """The plastic-hotspots version a worker runs."""
    from plastic_hotspots import __version__

    return __version__


def loaded_detectors() -> list[str]:
    """The detectors this process has built and keeps (each spec once), for diagnostics and tests."""
    return [f"{spec!r} threads={threads}" for spec, threads in _DETECTORS]
