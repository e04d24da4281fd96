"""Subcommands of the annotations stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the annotations stage's subcommands to the command line."""
