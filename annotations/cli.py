"""Subcommands of the annotations stage: ``plastic-hotspots annotate serve|init|push|prelabel|pull|...``.

The server and its key come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``; the key is never
printed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

annotate_app = typer.Typer(
    help="Volunteer labelling in Label Studio: projects, photos, model pre-labels, a live ML backend that "
    "retrains as labels arrive, exports.",
    no_args_is_help=True,
)

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Label Studio project title.")]


@annotate_app.command("serve")
def serve(
    data_dir: Annotated[
        Path, typer.Option(help="Label Studio's database, uploads, API key and admin password.")
    ] = Path("label-studio-data"),
    photos: Annotated[
        Path | None, typer.Option(help="Document root: the server shows the photos pushed under it.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8080,
) -> None:
    """Start a local Label Studio on 127.0.0.1 (analytics off) and keep it running until Ctrl-C or SIGTERM."""
    import signal

    from plastic_hotspots.annotations.errors import ServerError
    from plastic_hotspots.annotations.server import ADMIN_EMAIL, start_local_server
    from plastic_hotspots.annotations.workflow import check_port

    check_port(port)

    # Ctrl-C, SIGTERM and SIGHUP only ask to stop: nothing is interrupted half-way, so the server
    # started is always stopped with all it started.
    asked: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: asked.append(signum))
    try:
        server = start_local_server(
            data_dir, port=port or None, document_root=photos, cancel=lambda: bool(asked)
        )
    except KeyboardInterrupt:  # stop asked: start_local_server stopped Label Studio
        typer.echo("stopped before Label Studio was up")
        return
    try:
        typer.echo(f"Label Studio is running at {server.url} (log: {server.log})")
        typer.echo(f"export LABEL_STUDIO_URL={server.url}")
        typer.echo(f"export LABEL_STUDIO_API_KEY=$(cat {server.data_dir / 'api-key'})")
        typer.echo(
            f"web login: {ADMIN_EMAIL}, password in {server.admin_password_file} (only you can read it); "
            "volunteers get their own: `annotate volunteers add EMAIL`"
        )
        while (code := server.process.poll()) is None and not asked:
            time.sleep(0.5)
    finally:
        server.stop()
    if code is not None:
        raise ServerError(f"Label Studio exited with code {code}", hint=f"see {server.log}")
    typer.echo("Label Studio stopped")


@annotate_app.command("init")
def init(
    project: ProjectOpt,
    overlap: Annotated[int, typer.Option(help="Volunteers per photo.")] = 3,
    backend: Annotated[
        str | None, typer.Option(help="URL of `annotate backend`: model predictions as each task opens.")
    ] = None,
    backend_token: Annotated[Path, typer.Option(help="The backend's token file.")] = Path(
        "backend-state/backend-token"
    ),
) -> None:
    """Create (or update) a labelling project with the litter taxonomy and volunteer instructions."""
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import check_project
    from plastic_hotspots.annotations.workflow import init as do_init

    check_project(project, overlap)  # before the server is asked
    client = LabelStudioClient()
    pid, created = do_init(client, project, overlap)
    verb = "created" if created else "updated"
    typer.echo(f"{verb} project {project!r} (id {pid}), {overlap} volunteers per photo")
    if backend:
        from plastic_hotspots.annotations.workflow import connect_backend

        state = connect_backend(client, pid, backend, backend_token)
        typer.echo(f"ML backend {backend} connected ({state}): tasks get its boxes as they open")


@annotate_app.command("backend")
def backend_cmd(
    state_dir: Annotated[
        Path, typer.Option(help="The backend's token, the loop's state and its jobs (created, 0700).")
    ] = Path("backend-state"),
    document_root: Annotated[
        Path | None, typer.Option(help="The Label Studio server's document root (where pushed photos are).")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Weights to serve (default: detect's default model, following promotions)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 9090,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you need otherwise).")] = (
        "127.0.0.1"
    ),
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Project whose labels feed the retraining loop.")
    ] = None,
    retrain_after: Annotated[
        int,
        typer.Option(help="Consensus-ready photos since the last model that start a retraining (0: off)."),
    ] = 0,
    retrain_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs per retraining.")] = 10,
    retrain_imgsz: Annotated[int, typer.Option(help="Training image size of a retraining.")] = 640,
    retrain_batch: Annotated[int, typer.Option(help="Images per batch in a retraining.")] = 8,
    device: Annotated[str, typer.Option(help="Training device: 'cpu' or a CUDA device such as 0.")] = "cpu",
) -> None:
    """Serve the litter model to Label Studio (boxes as a task opens); retrain as labels come, if asked.

    Connect it to a project with `annotate init --project P --backend URL`.
    """
    import os
    import signal

    from plastic_hotspots.annotations.backend import ModelService, PhotoSource, backend_token, start_backend
    from plastic_hotspots.annotations.errors import AnnotationError
    from plastic_hotspots.annotations.loop import RetrainLoop, RetrainSettings
    from plastic_hotspots.annotations.workflow import check_port

    check_port(port)
    for option, value, least in (
        ("--retrain-after", retrain_after, 0), ("--retrain-epochs", retrain_epochs, 1),
        ("--retrain-imgsz", retrain_imgsz, 32), ("--retrain-batch", retrain_batch, 1),
    ):  # fmt: skip
        if value < least:
            raise AnnotationError(f"{option} must be at least {least}, got {value}", hint=f"fix {option}")
    loop = None
    if retrain_after > 0:
        from plastic_hotspots.annotations.labelstudio import LabelStudioClient

        if not project or document_root is None:
            raise AnnotationError(
                "the retraining loop needs the project and the photos",
                hint="pass --project TITLE and --document-root (the server's document root)",
            )
        if model is not None:
            raise AnnotationError(
                "the retraining loop improves the default model; --model fixes another one",
                hint="leave --model out when --retrain-after is given",
            )
        LabelStudioClient()  # the job pulls the project with these: checked now, not after the first labels
        settings = RetrainSettings(retrain_after, retrain_epochs, retrain_imgsz, retrain_batch, device)
        loop = RetrainLoop(state_dir, project, settings, document_root)
    token = backend_token(state_dir)
    service = ModelService(model)
    service.version  # noqa: B018 (loads the model now, so a bad model fails before serving)
    photos = PhotoSource(
        document_root, os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
    )
    running = start_backend(service, photos, token, host=host, port=port, loop=loop)
    typer.echo(
        f"ML backend serving {service.version} at {running.url} (token: {state_dir / 'backend-token'})"
    )
    typer.echo(f"connect it: plastic-hotspots annotate init --project TITLE --backend {running.url}")
    if loop is not None:
        typer.echo(
            f"retrains after {retrain_after} consensus-ready photos; "
            f"see `plastic-hotspots annotate status --state-dir {state_dir}`"
        )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=1.0)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@annotate_app.command("retrain", hidden=True)
def retrain_cmd(
    state_dir: Annotated[Path, typer.Option(help="The loop's state folder.")],
    job_dir: Annotated[Path, typer.Option(help="This job's folder.")],
) -> None:
    """One retraining job of the loop (started by the backend)."""
    import json

    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.loop import run_retrain_job

    result = run_retrain_job(state_dir, job_dir, LabelStudioClient())
    typer.echo(json.dumps(result, indent=1))


@annotate_app.command("status")
def status_cmd(
    state_dir: Annotated[Path, typer.Option(help="The backend's state folder.")] = Path("backend-state"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """The retraining loop's state: photos labelled since the last model, the job running, the last result."""
    import json

    from plastic_hotspots.annotations.loop import loop_status

    state = loop_status(state_dir)
    if json_out:
        typer.echo(json.dumps(state, indent=1))
        return
    typer.echo(f"project {state['project']!r}: {state['ready_since_last_model']} consensus-ready photos "
               f"since the last model (retrains at {state['threshold']})")  # fmt: skip
    job = state["job"]
    if state["job_running"]:
        typer.echo(f"job running since {job['started']}: {job.get('step') or 'starting'} ({job['folder']})")
    last = state["last"]
    if not last:
        typer.echo("no retraining has finished yet")
        return
    if last.get("error"):
        typer.echo(
            f"last job failed at {last.get('finished')}: {last['error']} (log: {last['folder']}/job.log)"
        )
        return
    score = (
        f"held-out mAP50-95 {last['candidate_score']:.3f} against {last['current_score']:.3f} "
        "for the model in use"
        if last.get("current_score") is not None
        else last.get("note", "not judged")
    )
    verdict = "promoted" if last.get("promoted") else "not promoted"
    typer.echo(f"last job finished {last.get('finished')}: dataset {last.get('dataset')}, {score}: {verdict}")
    if last.get("refreshed") is not None:
        typer.echo(f"{last['refreshed']} unlabelled tasks got predictions of {last.get('model_version')}")


@annotate_app.command("push")
def push(
    photos: Annotated[Path, typer.Argument(help="Folder of survey photos (searched recursively).")],
    project: ProjectOpt,
    document_root: Annotated[
        Path | None,
        typer.Option(help="The server's LOCAL_FILES_DOCUMENT_ROOT (photos on the server's disk)."),
    ] = None,
    url_prefix: Annotated[
        str | None, typer.Option(help="URL under which the photos are served instead.")
    ] = None,
) -> None:
    """Add photos as labelling tasks with their geotag and time; photos already pushed are skipped.

    Only files inside the folder are pushed (a link to a file elsewhere is refused and listed), and the
    server is given copies (hard links) of exactly those photos, never the whole folder.
    """
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import push as do_push

    s = do_push(LabelStudioClient(), project, photos, document_root=document_root, url_prefix=url_prefix)
    typer.echo(
        f"{s.found} photos: {s.added} added, {s.already_there} already in the project, "
        f"{s.without_position} without a position"
    )
    if s.refused:
        typer.echo(
            f"{len(s.refused)} file{'s' if len(s.refused) > 1 else ''} refused (not pushed, not shown):"
        )
        for key, why in s.refused:
            typer.echo(f"  {key} {why}")


volunteers_app = typer.Typer(help="Volunteers' own Label Studio accounts.", no_args_is_help=True)
annotate_app.add_typer(volunteers_app, name="volunteers")


@volunteers_app.command("add")
def volunteers_add(
    email: Annotated[str, typer.Argument(help="The volunteer's email (their login).")],
    data_dir: Annotated[
        Path, typer.Option(help="The --data-dir of `annotate serve` (the password is set there).")
    ] = Path("label-studio-data"),
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the new password (mode 0600); default <data-dir>/volunteers/EMAIL."
        ),
    ] = None,
) -> None:
    """Give a volunteer their own login with a new password, written to a file only you can read."""
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import add_volunteer, check_volunteer

    check_volunteer(email, data_dir)  # before the server is asked
    client = LabelStudioClient()
    account = add_volunteer(client, email, data_dir, password_file)
    verb = "created" if account.created else "exists; its password was replaced"
    typer.echo(
        f"account {email} {verb} (id {account.user}); its password is in {account.password_file} "
        f"(only you can read it): hand it to the volunteer privately; they log in at {client.url}"
    )


@annotate_app.command("prelabel")
def prelabel(
    detections: Annotated[Path, typer.Argument(help="detections.parquet from `plastic-hotspots detect`.")],
    project: ProjectOpt,
    photos: Annotated[Path, typer.Option(help="The folder the photos were pushed from.")],
) -> None:
    """Show the detector's boxes as pre-labels and serve the least certain photos first."""
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import prelabel as do_prelabel

    n = do_prelabel(LabelStudioClient(), project, detections, photos)
    typer.echo(f"pre-labelled {n} tasks; the queue now follows model uncertainty")


@annotate_app.command("pull")
def pull(
    project: ProjectOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON export to write.")] = Path("export.json"),
    page_size: Annotated[int, typer.Option(help="Tasks per snapshot export.")] = 1000,
) -> None:
    """Export every task with all its annotations (snapshot exports, page by page)."""
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import pull as do_pull

    n = do_pull(LabelStudioClient(), project, out, page_size)
    typer.echo(f"{n} tasks -> {out}")


@annotate_app.command("consensus")
def consensus_cmd(
    export: Annotated[Path, typer.Argument(help="JSON export from `annotate pull`.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for consensus.parquet and the reports.")
    ] = Path("consensus"),
    eps: Annotated[float, typer.Option(help="Largest 1 - IoU between boxes of one object.")] = 0.5,
    min_support: Annotated[float, typer.Option(help="Skill-weighted share of volunteers needed.")] = 0.5,
    review_project: Annotated[
        str | None, typer.Option(help="Send weak-consensus photos to '<project> (review)' in Label Studio.")
    ] = None,
) -> None:
    """Merge the volunteers' boxes into consensus boxes, weighted by skill on gold tasks."""
    from plastic_hotspots.annotations.consensus import ConsensusParams
    from plastic_hotspots.annotations.results import run_consensus

    made = run_consensus(export, out, ConsensusParams(eps=eps, min_support=min_support))
    accepted = sum(b.accepted for b in made.result.boxes)
    n_photos, n_boxes = len(made.contents.tasks), len(made.contents.boxes)
    typer.echo(
        f"{n_photos} photos, {n_boxes} volunteer boxes -> {accepted} consensus boxes; "
        f"{len(made.result.review_tasks)} photos need review; "
        f"{len(made.contents.problems)} regions reported in {out / 'problems.csv'}"
    )
    if review_project:
        from plastic_hotspots.annotations.labelstudio import LabelStudioClient
        from plastic_hotspots.annotations.workflow import send_review

        sent = send_review(LabelStudioClient(), review_project, made.result, made.contents)
        typer.echo(f"{sent.tasks} photos sent to '{review_project} (review)'")


@annotate_app.command("dataset")
def dataset_cmd(
    consensus_dir: Annotated[Path, typer.Argument(help="Folder written by `annotate consensus`.")],
    export: Annotated[Path, typer.Option(help="The export the consensus was made from.")],
    photos: Annotated[Path, typer.Option(help="The folder the photos were pushed from.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write.")] = Path("dataset"),
    group_m: Annotated[
        float, typer.Option(help="Photos within this grid cell and day stay in one split.")
    ] = 250.0,
    seed: Annotated[int, typer.Option(help="Salt of the split.")] = 0,
) -> None:
    """Write an Ultralytics YOLO dataset of the accepted consensus boxes, split by place and day."""
    from plastic_hotspots.annotations.dataset import DatasetSpec
    from plastic_hotspots.annotations.export import load_export
    from plastic_hotspots.annotations.results import dataset_from_consensus, is_labelled

    tasks = load_export(export)

    def photo_of(task: Mapping[str, Any]) -> Path:
        return photos / str((task.get("data") or {}).get("key") or task.get("id"))

    spec = DatasetSpec(group_m=group_m, seed=seed)
    summary = dataset_from_consensus(consensus_dir, tasks, photo_of, out, spec, source={"path": str(export)})
    unlabelled = sum(not is_labelled(task) for task in tasks if isinstance(task, Mapping))
    if unlabelled:
        typer.echo(f"{unlabelled} tasks nobody has labelled yet are left out")
    typer.echo(
        f"dataset {summary.version}: "
        + ", ".join(f"{s} {summary.images[s]} photos / {summary.boxes[s]} boxes" for s in summary.images)
        + f" -> {out / 'data.yaml'}"
    )


def register(app: typer.Typer) -> None:
    """Add the annotations stage's subcommands to the command line."""
    app.add_typer(annotate_app, name="annotate")
