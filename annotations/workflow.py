"""The labelling loop against a Label Studio server: init, push, prelabel, pull.

Each step is a plain function over a :class:`~plastic_hotspots.annotations.labelstudio.LabelStudioClient`; the
command
line (``plastic-hotspots annotate ...``) only parses options and calls them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
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


TITLE_MIN, TITLE_MAX = 3, 50  # Label Studio's PROJECT_TITLE_MIN_LEN and PROJECT_TITLE_MAX_LEN
MIRROR = ".plastic-hotspots-pushed"  # under the document root: the only files the server shows


def check_title(title: str) -> None:
    """Refuse a project title Label Studio would refuse or change.

    Raises:
        AnnotationError: The title is empty, too short or too long, or starts or ends with a space.
    """
    if not title.strip():
        raise AnnotationError(
            "the project title is empty", hint='name the project, e.g. --project "Chiang Rai"'
        )
    if title != title.strip():
        raise AnnotationError(
            f"the project title {title!r} starts or ends with a space",
            hint="Label Studio would store it without them; leave them out",
        )
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        raise AnnotationError(
            f"the project title {title!r} has {len(title)} characters; Label Studio takes "
            f"{TITLE_MIN} to {TITLE_MAX}",
            hint=f"use a title of {TITLE_MIN} to {TITLE_MAX} characters "
            "(a review project adds 9: ' (review)')",
        )


def check_port(port: int, option: str = "--port") -> None:
    """Refuse a TCP port outside 0 to 65535 (0: any free port) before anything is started.

    Raises:
        AnnotationError: The port cannot be bound.
    """
    if not 0 <= port <= 65535:
        raise AnnotationError(
            f"{option} must be a port from 0 to 65535, got {port}",
            hint=f"e.g. {option} 9090, or 0 for any free port",
        )


def check_project(title: str, overlap: int) -> None:
    """Refuse a project title or overlap Label Studio would refuse, before the server is asked.

    Raises:
        AnnotationError: The title (see :func:`check_title`) or the overlap (below 1) cannot be used.
    """
    check_title(title)
    if overlap < 1:
        raise AnnotationError(
            f"--overlap must be at least 1, got {overlap}", hint="use 3 to 5 volunteers per photo"
        )


def init(client: LabelStudioClient, title: str, overlap: int = 3) -> tuple[int, bool]:
    """Create or update the litter project; returns ``(id, created)``.

    Raises:
        AnnotationError: The title or the overlap cannot be used (checked before the server is asked).
    """
    check_project(title, overlap)
    settings = ProjectSettings(title, label_config(), INSTRUCTIONS + class_table(), overlap)
    return client.init_project(settings)


@dataclass(frozen=True, slots=True)
class PushSummary:
    """What a push did.

    Attributes:
        refused: ``(key, reason)`` of each file that was not pushed because it must not be shown (a
            link out of the photo folder, not a regular file).
    """

    found: int
    added: int
    already_there: int
    without_position: int
    refused: tuple[tuple[str, str], ...] = ()


def mirror_folder(document_root: Path, project: int) -> Path:
    """Where a project's pushed photos are placed for the server: ``<root>/.plastic-hotspots-pushed/<id>``."""
    return Path(document_root).resolve() / MIRROR / str(project)


def _private_dirs(folder: Path, stop: Path) -> None:
    """Create ``folder`` and its missing parents up to ``stop``, each 0700."""
    missing = []
    here = folder
    while here != stop and not here.exists():
        missing.append(here)
        here = here.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _copy_of(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)


def place_photo(source: Path, target: Path) -> None:
    """Put the vetted photo ``source`` at ``target``: a hard link, or a copy where linking fails.

    The result is checked to be a regular file with the vetted photo's content, so a photo swapped
    for a link after vetting is not placed.

    Raises:
        AnnotationError: The photo changed into something else while it was placed.
    """
    real = source.resolve(strict=True)
    want = os.stat(real, follow_symlinks=False)
    try:
        have = os.stat(target, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISREG(have.st_mode) and (_same_file(have, want) or _copy_of(have, want)):
            return
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(real, tmp, follow_symlinks=False)
            linked = True
        except OSError:  # another file system, or hard links not allowed: copy it
            linked = False
            src = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(src, "rb") as fin:
                if not _same_file(os.fstat(fin.fileno()), want):
                    raise AnnotationError(
                        f"{source} changed while it was pushed", hint="push again"
                    ) from None
                dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(dst, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            os.utime(tmp, ns=(want.st_atime_ns, want.st_mtime_ns))
        made = os.stat(tmp, follow_symlinks=False)
        if not stat.S_ISREG(made.st_mode) or (linked and not _same_file(made, want)):
            raise AnnotationError(f"{source} changed while it was pushed", hint="push again")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _refusals(refused: list[tuple[str, str]]) -> str:
    return "; ".join(f"{key} {why}" for key, why in refused[:5]) + (" ..." if len(refused) > 5 else "")


def push(
    client: LabelStudioClient,
    title: str,
    photos: Path,
    *,
    document_root: Path | None = None,
    url_prefix: str | None = None,
) -> PushSummary:
    """Add every photo under ``photos`` as a task (photos already in the project are skipped).

    With ``document_root`` (the server's ``LOCAL_FILES_DOCUMENT_ROOT``) the photos are hard-linked (or
    copied) into ``<document_root>/.plastic-hotspots-pushed/<project id>/`` and the project's Local Files
    storage covers that folder only, so the server shows the pushed photos and nothing else of the folder.
    Files that resolve outside ``photos`` (links) are not pushed and are listed in ``refused``.
    """
    pid = project_id(client, title)
    refused: list[tuple[str, str]] = []
    found = scan_photos(photos, refused)
    if not found:
        raise AnnotationError(
            f"no photos under {photos}"
            + (f" ({len(refused)} files refused: {_refusals(refused)})" if refused else ""),
            hint="JPEG, PNG or TIFF files inside the folder are pushed; links to files elsewhere are not",
        )
    if url_prefix is None and document_root is None:
        image_url(found[0].path)  # raises: no way for the server to reach the photos
    existing = client.task_ids_and_keys(pid)
    new = [p for p in found if p.key not in existing]
    mirror = None
    if url_prefix is None and document_root is not None:
        root = Path(document_root).resolve()
        mirror = mirror_folder(root, pid)
        _private_dirs(mirror, root)
        for p in found:  # photos already in the project too: a removed mirror is put back
            target = mirror / p.key
            _private_dirs(target.parent, mirror)
            place_photo(p.path, target)
        client.add_local_storage(pid, mirror)
    tasks = []
    for p in new:
        where = mirror / p.key if mirror is not None else p.path
        url = image_url(where, document_root=document_root, url_prefix=url_prefix, key=p.key)
        tasks.append({"data": p.data(url)})
    client.import_tasks(pid, tasks)
    return PushSummary(
        len(found), len(new), len(found) - len(new), sum(p.lat is None for p in found), tuple(refused)
    )


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


@dataclass(frozen=True, slots=True)
class VolunteerAccount:
    """A volunteer's own Label Studio account.

    Attributes:
        user: The account's id.
        created: False when the account existed (its password was replaced).
        password_file: The file (mode 0600) holding its new password, to hand to the volunteer.
    """

    user: int
    created: bool
    password_file: Path


def check_volunteer(email: str, data_dir: Path) -> str:
    """The volunteer's email, stripped, once it looks like one and ``data_dir`` holds the local server.

    Checked before any server is asked.

    Raises:
        AnnotationError: The email is not one, or ``data_dir`` holds no Label Studio database.
    """
    from plastic_hotspots.annotations.server import DATABASE_FILE

    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() or c == "/" for c in email):
        raise AnnotationError(f"{email!r} is not an email address", hint="give the volunteer's email")
    if not (Path(data_dir) / DATABASE_FILE).is_file():
        raise AnnotationError(
            f"no Label Studio database in {data_dir}",
            hint="pass the --data-dir of `annotate serve` on this machine; on a server elsewhere, "
            "its administrator adds accounts",
        )
    return email


def add_volunteer(
    client: LabelStudioClient, email: str, data_dir: Path, password_file: Path | None = None
) -> VolunteerAccount:
    """Give a volunteer an account of their own with a new random password, never the admin's key.

    The account joins the key's organization; its password is set in the local server's database under
    ``data_dir`` and written to ``password_file`` (default ``<data_dir>/volunteers/<email>``, mode 0600),
    never printed.

    Raises:
        AnnotationError: The email is not one, or the password file exists already.
        ServerError: The account cannot be created, or its password cannot be set.
    """
    from plastic_hotspots.annotations.server import set_password

    email = check_volunteer(email, data_dir)
    if password_file is None:
        password_file = Path(data_dir) / "volunteers" / email
        _private_dirs(password_file.parent, Path(data_dir))
    if password_file.exists():
        raise AnnotationError(
            f"{password_file} exists already",
            hint="hand that password over, or delete the file (or pass another --password-file) "
            "to give the volunteer a new one",
        )
    password = secrets.token_urlsafe(12)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    try:
        user, created = client.add_user(email)
        set_password(data_dir, email, password)
    except BaseException:
        password_file.unlink(missing_ok=True)
        raise
    return VolunteerAccount(user, created, password_file)
