"""The ``plastic-hotspots`` command line, composed from each stage package's ``cli`` module.

Each stage's ``cli.register`` adds its subcommands to the one Typer app. The stage CLIs are thin:
they parse, resolve configuration and call one library function. Heavy libraries are imported
inside the commands, so ``plastic-hotspots --help`` starts fast.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from plastic_hotspots import __version__
from plastic_hotspots.annotations import cli as annotations_cli
from plastic_hotspots.detector import cli as detector_cli
from plastic_hotspots.errors import READING_HINT, PlasticHotspotsError, is_reading_error, library_message
from plastic_hotspots.maps import cli as maps_cli
from plastic_hotspots.training import cli as training_cli

app = typer.Typer(
    name="plastic-hotspots",
    help=(
        "Find where plastic leaks into rivers: label litter photos with volunteers, train and run a "
        "litter detector over geotagged imagery, and map leakage-source and accumulation hotspots of "
        "river basins. Start with `plastic-hotspots demo --out demo/`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"plastic-hotspots {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Find where plastic leaks into rivers."""


annotations_cli.register(app)
training_cli.register(app)
detector_cli.register(app)
maps_cli.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (1 for the project's own errors, 2 for usage).

    Started as a program (``argv`` None), the project's own warnings print as one line each, "Warning:
    ..." (escaped like errors), instead of Python's file, line and source line.
    """
    if argv is None:
        warnings.showwarning = _warning_printer(warnings.showwarning)
    try:
        app(args=argv, prog_name="plastic-hotspots", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except PlasticHotspotsError as exc:
        # Messages carry paths and user text: brackets in them are text, never Rich markup.
        _print_error(escape(exc.message), escape(exc.hint) if exc.hint else None)
        return 1
    except Exception as exc:
        if not is_reading_error(exc):
            raise
        _print_error(f"a file could not be read: {escape(library_message(exc))}", escape(READING_HINT))
        return 1
    return 0


def _warning_printer(default: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints the project's warnings for people, others as ``default`` does."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not category.__module__.startswith("plastic_hotspots"):
            default(message, category, *args, **kwargs)
            return
        Console(stderr=True).print(f"[bold yellow]Warning:[/] {escape(str(message))}", highlight=False)

    return show


def _print_error(message: str, hint: str | None) -> None:
    """The error and how to fix it, on stderr (both already escaped for Rich)."""
    err = Console(stderr=True)
    err.print(f"[bold red]Error:[/] {message}", highlight=False)
    if hint:
        err.print(f"[bold]How to fix:[/] {hint}", highlight=False)


if __name__ == "__main__":
    sys.exit(main())
