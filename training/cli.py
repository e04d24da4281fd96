"""Subcommands of the training stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the training stage's subcommands to the command line."""
