"""How tile tasks are run: one after another here, or on Dask workers through a ``map_unordered``.

The tiled stages (:mod:`plastic_hotspots.maps.large.routing`, :mod:`plastic_hotspots.maps.large.sweeps`,
:mod:`plastic_hotspots.maps.large.run`) hand their
tile tasks to a :class:`Mapper`. Tasks are module-level functions of small picklable dataclasses
that name the tiled rasters to read and write (files under a work directory), so any runner that
pickles them works: :func:`serial_map` here, or ``Cluster.map_unordered`` of
:mod:`plastic_hotspots.cluster` (Dask), whose workers must see the work directory at the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar, overload

__all__ = ["LazyTasks", "Mapper", "serial_map"]

T = TypeVar("T")
R = TypeVar("R")


class Mapper(Protocol):
    """Runs ``fn`` on every item, yielding ``(index, result)`` in any order (each index once)."""

    def __call__(self, fn: Callable[[T], R], items: Sequence[T], /) -> Iterable[tuple[int, R]]:
        """Run ``fn`` on every item of ``items``."""
        ...


def serial_map(fn: Callable[[T], R], items: Sequence[T], /) -> Iterator[tuple[int, R]]:
    """Run ``fn`` on each item in turn, in this process."""
    for index, item in enumerate(items):
        yield index, fn(item)


class LazyTasks(Sequence[T]):
    """A sequence whose items are built when asked for: ``make(i)`` for ``i`` in ``range(length)``.

    Tasks carry halos and inflows; built all at once, they would hold ``O(rows x cols / tile)``
    values. Both runners take items one at a time (Dask keeps a bounded number in flight).
    """

    def __init__(self, length: int, make: Callable[[int], T]) -> None:
        self._length = length
        self._make = make

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError(f"task {index} out of range (0 to {self._length - 1})")
        return self._make(index % self._length)
