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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from plastic_hotspots.maps.large.store import TileLayout

__all__ = ["LazyTasks", "Mapper", "relax_tiles", "serial_map"]

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


_COLOURS = ((0, 0), (0, 1), (1, 0), (1, 1))


def relax_tiles(
    layout: TileLayout,
    mapper: Mapper,
    fn: Callable[[Any], Any],
    make_task: Callable[[int, int, float | None], Any],
    check: Callable[[int, int], float | None],
    store: Callable[[int, int, Any], bool],
) -> int:
    """Solve tiles until none is pending; a tile is pending when a neighbour's edges changed.

    ``check(ti, tj)`` says whether a solved tile is still a fixpoint with its current halo (None), or
    else gives a hint for solving it again (the routing's fill check gives a floor no cell can go
    below); ``make_task(ti, tj, hint)`` builds a tile's task (``hint`` None: the first solve);
    ``store(ti, tj, result)`` keeps a result's edges and says whether they changed. With
    :func:`serial_map` tiles are solved one at a time in raster order and back; with another mapper,
    in batches of one of four colours (tiles of a colour share no edge).

    Returns:
        The number of tile solves.
    """
    pending = set(layout.tiles())
    solved: set[tuple[int, int]] = set()
    solves = 0
    sweep = 0
    while pending:
        backwards = sweep % 2 == 1
        if mapper is serial_map:
            # One tile at a time, in raster order and back: each solve sees its neighbours' latest edges.
            batches = [[t] for t in sorted(pending, reverse=backwards)]
        else:
            batches = [
                sorted((t for t in pending if (t[0] % 2, t[1] % 2) == colour), reverse=backwards)
                for colour in (reversed(_COLOURS) if backwards else _COLOURS)
            ]
        for candidates in batches:
            batch = [t for t in candidates if t in pending]
            pending.difference_update(batch)
            todo: list[tuple[int, int]] = []
            hints: list[float | None] = []
            for t in batch:
                hint = check(*t) if t in solved else None
                if t not in solved or hint is not None:
                    todo.append(t)
                    hints.append(hint)
            tasks = LazyTasks(len(todo), _task_maker(make_task, todo, hints))
            for index, result in mapper(fn, tasks):
                ti, tj = todo[index]
                solved.add((ti, tj))
                solves += 1
                if store(ti, tj, result):
                    pending.update(layout.neighbours(ti, tj))
        sweep += 1
    return solves


def _task_maker(
    make_task: Callable[[int, int, float | None], Any], todo: list[tuple[int, int]], hints: list[float | None]
) -> Callable[[int], Any]:
    def make(i: int) -> Any:
        return make_task(todo[i][0], todo[i][1], hints[i])

    return make
