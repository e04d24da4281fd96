"""Subcommands of the annotations stage: ``plastic-hotspots annotate serve|init|push|prelabel|pull``.

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
    data_dir: Annotated[Path, typer.Option(help="Label Studio's database, uploads and API key.")] = Path(
        "label-studio-data"
    ),
    photos: Annotated[Path | None, typer.Option(help="Folder of photos the server may show.")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8080,
) -> None:
    """Start a local Label Studio on 127.0.0.1 (analytics off) and keep it running until Ctrl-C."""
    from annotations.server import start_local_server

    server = start_local_server(data_dir, port=port or None, document_root=photos)
    typer.echo(f"Label Studio is running at {server.url} (log: {server.log})")
    typer.echo(f"export LABEL_STUDIO_URL={server.url}")
    typer.echo(f"export LABEL_STUDIO_API_KEY=$(cat {server.data_dir / 'api-key'})")
    try:
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@annotate_app.command("init")
def init(
    project: ProjectOpt,
    overlap: Annotated[int, typer.Option(help="Volunteers per photo.")] = 3,
) -> None:
    """Create (or update) a labelling project with the litter taxonomy and volunteer instructions."""
    from annotations.labelstudio import LabelStudioClient
    from annotations.workflow import init as do_init

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
    """Add photos as labelling tasks with their geotag and time; photos already pushed are skipped."""
    from annotations.labelstudio import LabelStudioClient
    from annotations.workflow import push as do_push

    s = do_push(LabelStudioClient(), project, photos, document_root=document_root, url_prefix=url_prefix)
    typer.echo(
        f"{s.found} photos: {s.added} added, {s.already_there} already in the project, "
        f"{s.without_position} without a position"
    )


@annotate_app.command("prelabel")
def prelabel(
    detections: Annotated[Path, typer.Argument(help="detections.parquet from `plastic-hotspots detect`.")],
    project: ProjectOpt,
    photos: Annotated[Path, typer.Option(help="The folder the photos were pushed from.")],
) -> None:
    """Show the detector's boxes as pre-labels and serve the least certain photos first."""
    from annotations.labelstudio import LabelStudioClient
    from annotations.workflow import prelabel as do_prelabel

    n = do_prelabel(LabelStudioClient(), project, detections, photos)
    typer.echo(f"pre-labelled {n} tasks; the queue now follows model uncertainty")


@annotate_app.command("pull")
def pull(
    project: ProjectOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON export to write.")] = Path("export.json"),
    page_size: Annotated[int, typer.Option(help="Tasks per snapshot export.")] = 1000,
) -> None:
    """Export every task with all its annotations (snapshot exports, page by page)."""
    from annotations.labelstudio import LabelStudioClient
    from annotations.workflow import pull as do_pull

    n = do_pull(LabelStudioClient(), project, out, page_size)
    typer.echo(f"{n} tasks -> {out}")


def register(app: typer.Typer) -> None:
    """Add the annotations stage's subcommands to the command line."""
    app.add_typer(annotate_app, name="annotate")
