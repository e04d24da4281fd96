"""Subcommands of the annotations stage: ``plastic-hotspots annotate serve|init|push|prelabel|pull|...``.

The server and its key come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``; the key is never
printed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

annotate_app = typer.Typer(
    help="Volunteer labelling in Label Studio: projects, photos, model pre-labels, exports.",
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
) -> None:
    """Create (or update) a labelling project with the litter taxonomy and volunteer instructions."""
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.workflow import check_title
    from plastic_hotspots.annotations.workflow import init as do_init

    check_title(project)  # before the server is asked
    pid, created = do_init(LabelStudioClient(), project, overlap)
    verb = "created" if created else "updated"
    typer.echo(f"{verb} project {project!r} (id {pid}), {overlap} volunteers per photo")


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
    from plastic_hotspots.annotations.workflow import add_volunteer

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
    import json

    import pandas as pd

    from plastic_hotspots.annotations.dataset import DatasetSpec, LabelledBox, PhotoMeta, write_dataset
    from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
    from plastic_hotspots.records import BBox

    frame = pd.read_parquet(consensus_dir / "consensus.parquet")
    frame = frame[frame["accepted"]]
    boxes = [
        LabelledBox(str(task), str(label), BBox(float(x1), float(y1), float(x2), float(y2)))
        for task, label, x1, y1, x2, y2 in frame[["task", "label", "x1", "y1", "x2", "y2"]].itertuples(
            index=False
        )
    ]
    tasks = json.loads(export.read_text(encoding="utf-8"))
    metas = []
    for task in tasks:
        data = task.get("data") or {}
        key = str(data.get("key") or task.get("id"))
        metas.append(
            PhotoMeta(key, photos / key, int(data.get("width") or 0), int(data.get("height") or 0),
                      data.get("lon"), data.get("lat"), data.get("captured_at"))
        )  # fmt: skip
    summary = write_dataset(out, metas, boxes, CLASS_NAMES, DatasetSpec(group_m=group_m, seed=seed),
                            source={"path": str(export), "consensus": str(consensus_dir)})  # fmt: skip
    typer.echo(
        f"dataset {summary.version}: "
        + ", ".join(f"{s} {summary.images[s]} photos / {summary.boxes[s]} boxes" for s in summary.images)
        + f" -> {out / 'data.yaml'}"
    )


def register(app: typer.Typer) -> None:
    """Add the annotations stage's subcommands to the command line."""
    app.add_typer(annotate_app, name="annotate")
