"""The closed volunteer loop: labels arrive, a better model follows, and its boxes go back to the volunteers.

The ML backend (:mod:`plastic_hotspots.annotations.backend`) passes Label Studio's annotation webhooks to a
:class:`RetrainLoop`. It counts the photos that become *consensus-ready* (every volunteer the project asks
for has labelled them) since the last model. Past ``threshold`` it starts one background job
(``plastic-hotspots annotate retrain``, a child process with its own log) that

1. pulls the project's export, 2. runs the skill-weighted consensus, 3. writes the next dataset version,
4. fine-tunes the model in use, 5. evaluates the candidate and the model in use on a fixed held-out split
(drawn at the first job and pinned to ``test`` in every later dataset, so no model ever trains on it),
6. promotes the candidate only if it scores better there (the registry's rule), and 7. refreshes the
predictions of unlabelled tasks with the new version and lets the queue follow its uncertainty.

Everything lives in one state folder: ``loop.json`` (settings, the count, the running job; written by the
backend), ``job.json`` (the job's step and last result; written by the job), ``heldout/`` (the fixed
evaluation split) and ``jobs/<time>/`` (each job's export, consensus, dataset, training run and log).
``annotate status`` reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.geoio import atomic_path, process_alive

if TYPE_CHECKING:
    from collections.abc import Mapping

    from plastic_hotspots.annotations.backend import ModelService, PhotoSource
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient

LOOP_FILE = "loop.json"
JOB_FILE = "job.json"
ANNOTATION_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})


@dataclass(frozen=True, slots=True)
class RetrainSettings:
    """How the loop retrains.

    Attributes:
        threshold: Consensus-ready photos since the last model that start a job (0: never).
        epochs: Fine-tuning epochs per job.
        imgsz: Training image size.
        batch: Images per batch.
        device: ``cpu`` or a CUDA device.
        group_m: Photos within this grid cell and day stay in one split.
        seed: Salt of the split.
        start: Checkpoint to fine-tune from (default: the model in use).
    """

    threshold: int = 50
    epochs: int = 10
    imgsz: int = 640
    batch: int = 8
    device: str = "cpu"
    group_m: float = 250.0
    seed: int = 0
    start: str | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _consensus_ready(task: Mapping[str, Any], project: Mapping[str, Any]) -> bool:
    """Whether every volunteer the project asks for has labelled the task (cancelled ones do not count)."""
    wanted = int(project.get("maximum_annotations") or 1)
    done = int(task.get("total_annotations") or 0) - int(task.get("cancelled_annotations") or 0)
    return bool(task.get("is_labeled")) or done >= wanted


class RetrainLoop:
    """Counts consensus-ready photos from webhooks and starts the retraining job past the threshold.

    Args:
        state_dir: The loop's folder (created, 0700).
        project: Title of the Label Studio project whose labels are counted.
        settings: Threshold and training settings.
        document_root: Where the pushed photos are (the server's document root).
        env: Environment of the job (``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` must be in it).
    """

    def __init__(
        self,
        state_dir: Path,
        project: str,
        settings: RetrainSettings,
        document_root: Path | None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.project = project
        self.settings = settings
        self.env = dict(env if env is not None else os.environ)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        state = _read(self.state_dir / LOOP_FILE)
        state.update(
            project=project,
            settings=asdict(settings),
            document_root=str(Path(document_root).resolve()) if document_root else None,
        )
        state.setdefault("ready_tasks", [])
        state.setdefault("job", None)
        self._state = state
        _write(self.state_dir / LOOP_FILE, state)

    def on_event(self, payload: Mapping[str, Any]) -> None:
        """A Label Studio webhook: count a task that became consensus-ready; past the threshold, retrain."""
        if payload.get("action") not in ANNOTATION_ACTIONS:
            return
        project = payload.get("project") or {}
        if project.get("title") not in (None, self.project):
            return
        tasks = (
            [payload["task"]] if isinstance(payload.get("task"), dict) else list(payload.get("tasks") or [])
        )
        with self._lock:
            ready = set(self._state["ready_tasks"])
            for task in tasks:
                if isinstance(task, dict) and "id" in task and _consensus_ready(task, project):
                    ready.add(int(task["id"]))
            self._state["ready_tasks"] = sorted(ready)
            self._maybe_start()
            _write(self.state_dir / LOOP_FILE, self._state)

    def job_running(self) -> bool:
        """Whether a retraining job is alive."""
        if self._process is not None:
            return self._process.poll() is None
        job = self._state.get("job") or {}
        return bool(job.get("pid")) and process_alive(int(job["pid"]))

    def _maybe_start(self) -> None:
        threshold = self.settings.threshold
        if threshold <= 0 or len(self._state["ready_tasks"]) < threshold or self.job_running():
            return
        folder = self.state_dir / "jobs" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        folder.mkdir(parents=True, exist_ok=True)
        job = _Job(self.state_dir)
        job.step("starting")  # until the job names its first step; the last job's "done" no longer holds
        cmd = [sys.executable, "-m", "plastic_hotspots.cli", "annotate", "retrain",
               "--state-dir", str(self.state_dir), "--job-dir", str(folder)]  # fmt: skip
        with open(folder / "job.log", "ab") as out:
            self._process = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._state["job"] = {
            "pid": self._process.pid,
            "started": _now(),
            "folder": str(folder),
            "photos": len(self._state["ready_tasks"]),
        }
        self._state["ready_tasks"] = []

    def status(self) -> dict[str, Any]:
        """The loop's state (see :func:`loop_status`)."""
        with self._lock:
            return loop_status(self.state_dir)


def loop_status(state_dir: Path) -> dict[str, Any]:
    """What the loop is doing: photos ready since the last model, the job (running or not), last result."""
    state_dir = Path(state_dir)
    if not (state_dir / LOOP_FILE).is_file():
        raise AnnotationError(
            f"{state_dir} holds no retraining loop",
            hint="start one with `plastic-hotspots annotate backend --retrain-after N --state-dir DIR`",
        )
    state = _read(state_dir / LOOP_FILE)
    job_state = _read(state_dir / JOB_FILE)
    job = state.get("job") or {}
    running = bool(job.get("pid")) and process_alive(int(job["pid"])) and job_state.get("step") != "done"
    return {
        "project": state.get("project"),
        "threshold": (state.get("settings") or {}).get("threshold"),
        "ready_since_last_model": len(state.get("ready_tasks") or []),
        "job_running": running,
        "job": {**job, "step": job_state.get("step")} if job else None,
        "last": job_state.get("last"),
        "history": job_state.get("history") or [],
    }


class _Job:
    """One retraining job's record in ``job.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / JOB_FILE
        self.data = _read(self.path)

    def step(self, name: str) -> None:
        self.data["step"] = name
        self.data["step_started"] = _now()
        _write(self.path, self.data)

    def finish(self, result: dict[str, Any]) -> None:
        self.data["step"] = "done"
        self.data["last"] = result
        self.data["history"] = [*(self.data.get("history") or []), result][-50:]
        _write(self.path, self.data)


def run_retrain_job(state_dir: Path, job_dir: Path, client: LabelStudioClient) -> dict[str, Any]:
    """Pull, consensus, dataset, fine-tune, evaluate on the fixed held-out split, promote if better, refresh.

    Returns:
        The job's result (also written to ``job.json``): the dataset version, the figures of candidate and
        model in use on the held-out split, whether it was promoted, the model version now served and how
        many predictions were refreshed.
    """
    state_dir, job_dir = Path(state_dir), Path(job_dir)
    state = _read(state_dir / LOOP_FILE)
    if not state:
        raise AnnotationError(
            f"{state_dir} holds no retraining loop", hint="start the backend with --retrain-after"
        )
    settings = RetrainSettings(**(state.get("settings") or {}))
    project = str(state["project"])
    root = Path(state["document_root"]) if state.get("document_root") else None
    job = _Job(state_dir)
    result: dict[str, Any] = {"started": _now(), "folder": str(job_dir), "promoted": False}
    try:
        result.update(_retrain(state_dir, job_dir, client, project, root, settings, job))
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        job.finish({**result, "finished": _now()})
        raise
    result["finished"] = _now()
    job.finish(result)
    return result


def _retrain(
    state_dir: Path,
    job_dir: Path,
    client: LabelStudioClient,
    project: str,
    root: Path | None,
    settings: RetrainSettings,
    job: _Job,
) -> dict[str, Any]:
    from plastic_hotspots.annotations.backend import ModelService, PhotoSource, local_photo
    from plastic_hotspots.annotations.dataset import DatasetSpec
    from plastic_hotspots.annotations.results import dataset_from_consensus, is_labelled, run_consensus
    from plastic_hotspots.annotations.workflow import pull
    from plastic_hotspots.detector.yolo import cache_root, default_model_path, train_yolo
    from plastic_hotspots.training.registry import promote

    if root is None:
        raise AnnotationError(
            "the loop needs the photos' document root", hint="start the backend with --document-root"
        )
    job.step("pull")
    export = job_dir / "export.json"
    pull(client, project, export)
    tasks = json.loads(export.read_text(encoding="utf-8"))
    job.step("consensus")
    made = run_consensus(export, job_dir / "consensus")
    labelled = [t for t in tasks if is_labelled(t)]
    job.step("dataset")
    heldout_file = state_dir / "heldout.json"
    fixed = _read(heldout_file)
    summary = dataset_from_consensus(
        job_dir / "consensus", labelled, lambda t: local_photo(str((t.get("data") or {}).get("image")), root),
        job_dir / "dataset", DatasetSpec(group_m=settings.group_m, seed=settings.seed), fixed_splits=fixed,
    )  # fmt: skip
    heldout = state_dir / "heldout"
    if not fixed:
        _pin_heldout(job_dir / "dataset", heldout, heldout_file, summary.split_of)
    out: dict[str, Any] = {
        "dataset": summary.version,
        "photos": dict(summary.images),
        "boxes": dict(summary.boxes),
        "consensus_boxes": sum(b.accepted for b in made.result.boxes),
    }
    if summary.images.get("train", 0) == 0:
        out["note"] = "no photo in the training split yet: nothing trained"
        return out
    held = (
        sum(1 for _ in (heldout / "images" / "test").glob("*"))
        if (heldout / "images" / "test").is_dir()
        else 0
    )
    out["heldout_photos"] = held
    job.step("train")
    start = Path(settings.start) if settings.start else default_model_path()
    best = train_yolo(
        job_dir / "dataset" / "data.yaml", start, job_dir / "runs", epochs=settings.epochs,
        imgsz=settings.imgsz, batch=settings.batch, device=settings.device, seed=settings.seed,
        workers=0, config_dir=cache_root() / "ultralytics",
    )  # fmt: skip
    out["candidate"] = str(best)
    if held == 0:
        out["note"] = "no held-out photo yet: the candidate is not judged and not promoted"
        return out
    job.step("evaluate")
    promotion = promote(best, heldout, split="test")
    out.update(
        metric="map50_95", candidate_score=promotion.candidate, current_score=promotion.current,
        promoted=promotion.promoted,
    )  # fmt: skip
    service = ModelService(None)
    out["model_version"] = service.version
    if not promotion.promoted:
        return out
    job.step("refresh")
    out["refreshed"] = refresh_predictions(client, project, tasks, service, PhotoSource(document_root=root))
    return out


def _pin_heldout(dataset: Path, heldout: Path, record: Path, split_of: Mapping[str, str]) -> None:
    """Keep the first dataset's test split as the loop's fixed evaluation set."""
    import shutil

    import yaml

    if heldout.exists():
        shutil.rmtree(heldout)
    for part in ("images", "labels"):
        source = dataset / part / "test"
        if source.is_dir():
            shutil.copytree(source, heldout / part / "test")
    data = yaml.safe_load((dataset / "data.yaml").read_text(encoding="utf-8"))
    (heldout / "data.yaml").write_text(
        yaml.safe_dump({"path": str(heldout), "test": "images/test", "names": data["names"]}),
        encoding="utf-8",
    )
    _write(record, {k: "test" for k, split in split_of.items() if split == "test"})


def refresh_predictions(
    client: LabelStudioClient,
    project: str,
    tasks: list[dict[str, Any]],
    service: ModelService,
    photos: PhotoSource,
) -> int:
    """New predictions, with the served model's version, on every task nobody has labelled; queue by them."""
    from plastic_hotspots.annotations.workflow import project_id

    pid = project_id(client, project)
    version = service.version
    n = 0
    for task in tasks:
        if task.get("annotations"):
            continue
        prediction = service.predict(task, photos)
        client.add_prediction(int(task["id"]), prediction["result"], prediction["score"], version)
        n += 1
    client.use_uncertainty_sampling(pid, version)
    return n
