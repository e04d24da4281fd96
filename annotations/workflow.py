"""The labelling loop against a Label Studio server: init, push, prelabel, pull.

Each step is a plain function over a :class:`~plastic_hotspots.annotations.labelstudio.LabelStudioClient`; the
command
line (``plastic-hotspots annotate ...``) only parses options and calls them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from plastic_hotspots.annotations.consensus import ConsensusBox, ConsensusResult
from plastic_hotspots.annotations.convert import ls_region
from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.annotations.export import ExportContents
from plastic_hotspots.annotations.labelstudio import LabelStudioClient, ProjectSettings
from plastic_hotspots.annotations.tasks import image_url, key_for, prelabels, scan_photos
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES, INSTRUCTIONS, class_table, label_config
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.progress import track


def project_id(client: LabelStudioClient, title: str) -> int:
    """The id of an existing project.

    Raises:
        AnnotationError: No project has that title.
    """
    found = client.find_project(title)
    if found is None:
        raise AnnotationError(
            f"no Label Studio project titled {title!r}", hint="create it with `annotate init`"
        )
    return found


def init(client: LabelStudioClient, title: str, overlap: int = 3) -> tuple[int, bool]:
    """Create or update the litter project; returns ``(id, created)``."""
    if overlap < 1:
        raise AnnotationError(
            f"overlap must be at least 1, got {overlap}", hint="use 3 to 5 volunteers per photo"
        )
    settings = ProjectSettings(title, label_config(), INSTRUCTIONS + class_table(), overlap)
    return client.init_project(settings)


@dataclass(frozen=True, slots=True)
class PushSummary:
    """What a push did."""

    found: int
    added: int
    already_there: int
    without_position: int


def push(
    client: LabelStudioClient,
    title: str,
    photos: Path,
    *,
    document_root: Path | None = None,
    url_prefix: str | None = None,
) -> PushSummary:
    """Add every photo under ``photos`` as a task (photos already in the project are skipped)."""
    pid = project_id(client, title)
    found = scan_photos(photos)
    if not found:
        raise AnnotationError(f"no photos under {photos}", hint="JPEG, PNG or TIFF files are pushed")
    existing = client.task_ids_and_keys(pid)
    new = [p for p in found if p.key not in existing]
    if url_prefix is None and document_root is not None:
        client.add_local_storage(pid, photos)
    tasks = []
    for p in new:
        url = image_url(p.path, document_root=document_root, url_prefix=url_prefix, key=p.key)
        tasks.append({"data": p.data(url)})
    client.import_tasks(pid, tasks)
    return PushSummary(len(found), len(new), len(found) - len(new), sum(p.lat is None for p in found))


def prelabel(
    client: LabelStudioClient, title: str, detections: Path, photos: Path, model_version: str | None = None
) -> int:
    """Attach a ``detect`` run's boxes to the project's tasks and let the queue follow model uncertainty.

    Returns:
        The number of tasks pre-labelled.
    """
    import geopandas as gpd

    from plastic_hotspots.geoio import read_provenance

    pid = project_id(client, title)
    frame = gpd.read_parquet(detections)
    try:
        recorded = read_provenance(detections).model
    except KeyError:  # a detections file from elsewhere: name the model by the file
        recorded = None
    version = model_version or recorded or detections.stem
    frame["key"] = [key_for(p, photos) for p in frame["image"]]
    ids = client.task_ids_and_keys(pid)
    sizes = {t.key: (t.width, t.height) for t in scan_photos(photos) if t.key in ids}
    labels = prelabels(frame.to_dict(orient="records"), sizes, CLASS_NAMES)
    for label in track(labels, "Pre-labelling"):
        client.add_prediction(ids[label.key], label.result, label.score, version)
    client.use_uncertainty_sampling(pid, version)
    return len(labels)


def pull(client: LabelStudioClient, title: str, out: Path, page_size: int = 1000) -> int:
    """Export every task with its annotations into ``out`` (JSON), page by page.

    Pages land in ``<out>.parts/`` as they arrive, so an interrupted pull keeps what it got; the
    final file is written atomically. Returns the number of tasks.
    """
    pid = project_id(client, title)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    n = 0
    for k, page in enumerate(client.export_pages(pid, page_size=page_size)):
        with atomic_path(parts / f"page-{k:05d}.json") as tmp:
            tmp.write_text(json.dumps(page), encoding="utf-8")
        n += len(page)
    tasks = []
    for page_file in sorted(parts.glob("page-*.json")):
        tasks.extend(json.loads(page_file.read_text(encoding="utf-8")))
    users = client.user_emails()
    for task in tasks:
        for annotation in task.get("annotations") or []:
            who = annotation.get("completed_by")
            if isinstance(who, int) and who in users:
                annotation["completed_by"] = {"id": who, "email": users[who]}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    shutil.rmtree(parts)
    return n


@dataclass(frozen=True, slots=True)
class ReviewSummary:
    """What was sent for review."""

    project: int
    tasks: int


def send_review(
    client: LabelStudioClient, title: str, result: ConsensusResult, contents: ExportContents, overlap: int = 1
) -> ReviewSummary:
    """Put the photos whose consensus is weak into ``<title> (review)``, consensus boxes as pre-labels.

    A reviewer (an expert, or the most skilled volunteers) corrects them there; tasks already in the
    review project are not added twice.
    """
    review_title = f"{title} (review)"
    pid, _ = init(client, review_title, overlap)
    existing = client.task_ids_and_keys(pid)
    todo = [k for k in result.review_tasks if k not in existing]
    client.import_tasks(pid, [{"data": dict(contents.tasks[k])} for k in todo])
    ids = client.task_ids_and_keys(pid)
    by_task: dict[str, list[ConsensusBox]] = {}
    for box in result.boxes:
        if box.task in result.review_tasks and box.accepted:
            by_task.setdefault(box.task, []).append(box)
    for key in todo:
        data = contents.tasks[key]
        width, height = int(data.get("width") or 0), int(data.get("height") or 0)
        if not width or not height:
            continue
        regions = [
            ls_region(b.box, b.label, width, height, f"c{n}", b.support)
            for n, b in enumerate(by_task.get(key, []))
        ]
        support = min((b.support for b in by_task.get(key, [])), default=0.0)
        client.add_prediction(ids[key], regions, support, f"consensus {result.params.eps:g}")
    return ReviewSummary(pid, len(todo))


def connect_backend(client: LabelStudioClient, project: int, url: str, token_file: Path) -> str:
    """Connect ``annotate backend`` at ``url`` to the project; returns Label Studio's word on it.

    Raises:
        AnnotationError: The token file is missing, or Label Studio cannot reach the backend.
    """
    if not Path(token_file).is_file():
        raise AnnotationError(
            f"no backend token at {token_file}",
            hint="start `plastic-hotspots annotate backend` first, or pass --backend-token (its token file)",
        )
    token = Path(token_file).read_text(encoding="utf-8").strip()
    backend = client.connect_backend(project, url, token)
    state, error = client.backend_state(backend)
    if state != "CO":
        raise AnnotationError(
            f"Label Studio cannot use the backend at {url} (state {state}: {error or 'no detail'})",
            hint="check that `annotate backend` runs there and that --backend-token is its token file",
        )
    return "connected"
