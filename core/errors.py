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


class ConfigWarning(UserWarning):
    """A config key is accepted but has no effect (the message says what to do instead)."""


class ClusterError(PlasticHotspotsError):
    """Dask workers cannot be used: Dask is not installed, the scheduler is unreachable, workers died."""


class GeotagError(PlasticHotspotsError):
    """A photo's GPS tags are present but malformed or impossible (``reason`` is ``impossible_gps``)."""

    reason = "impossible_gps"


READING_ERROR_MODULES = ("rasterio", "pyogrio", "fiona", "pyarrow", "sqlite3", "PIL")
"""Libraries whose errors, escaping a reader, mean an input file is broken (not a bug of ours)."""

READING_HINT = (
    "check that the file named above is complete and of the format its name says (a 0-byte file, or text "
    "named .tif/.gpkg/.parquet, is neither): export or copy it again"
)
"""How to fix a file a library could not read."""


def is_reading_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of one of :data:`READING_ERROR_MODULES` (a reader met a broken file)."""
    module = type(exc).__module__.split(".", 1)[0].lstrip("_")
    return module in READING_ERROR_MODULES


def library_message(exc: BaseException) -> str:
    """A library error's words with those of the errors it came from (GDAL names the file in those).

    rasterio's "Read failed. See previous exception for details." says nothing by itself: the chained
    GDAL errors say which file and what was wrong, and are joined to it.
    """
    words: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(words) < 4:
        seen.add(id(current))
        text = str(current).replace("See previous exception for details.", "").strip()
        if text and not any(text in earlier for earlier in words):
            words.append(text)
        current = current.__cause__ or current.__context__
    return "; ".join(words) or type(exc).__name__
