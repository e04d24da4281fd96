"""Subcommands of the detector stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the detector stage's subcommands to the command line."""
