"""The root of every error the project raises on purpose.

Each stage package derives its own base from :class:`PlasticHotspotsError`; the command line turns
any of them into a readable message and exit code 1. Every error carries a ``hint`` that tells the
user how to fix the problem.
"""

from __future__ import annotations

from typing import Any


class PlasticHotspotsError(Exception):
    """Base class of all errors raised by plastic-hotspots.

    Args:
        message: What went wrong, naming what was expected and what came.
        hint: How to fix it; shown under the message by the command line.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHow to fix: {self.hint}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (message, hint and any subclass fields), so an error raised on a Dask worker
        # reaches the client as it was, whatever the subclass's constructor takes.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[PlasticHotspotsError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class RecordError(PlasticHotspotsError, ValueError):
    """A record was built from invalid values."""


class ConfigError(PlasticHotspotsError):
    """The settings of a run are not usable.

    A config file is missing, malformed or names unknown keys, options contradict each other, or the
    inputs as a whole cannot be used. Every stage raises this one class.
    """


class ClusterError(PlasticHotspotsError):
    """Dask workers cannot be used: Dask is not installed, the scheduler is unreachable, workers died."""


class GeotagError(PlasticHotspotsError):
    """A photo's GPS tags are present but malformed or impossible (``reason`` is ``impossible_gps``)."""

    reason = "impossible_gps"
