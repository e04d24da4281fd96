"""Progress bars for long work, shown on a terminal and silent elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def progress_bar(*, transient: bool = False) -> Progress:
    """A rich progress bar with count, elapsed and remaining time.

    Rich disables itself when standard error is not a terminal, so logs stay clean.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` showing a progress bar."""
    with progress_bar() as bar:
        yield from bar.track(items, description=description, total=total)
