"""Progress bars for long work, shown on a terminal and silent elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``12.3 img/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        """The task's current rate."""
        speed = task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed is not None else f"- {self.unit}/s", style="cyan")


def progress_bar(*, transient: bool = False, rate_unit: str | None = None) -> Progress:
    """A rich progress bar with count, elapsed and remaining time (and a rate, given its unit).

    Rich disables itself when standard error is not a terminal, so logs stay clean.
    """
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if rate_unit:
        columns.append(RateColumn(rate_unit))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, transient=transient)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` showing a progress bar."""
    with progress_bar() as bar:
        yield from bar.track(items, description=description, total=total)
