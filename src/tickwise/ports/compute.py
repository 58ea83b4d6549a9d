"""Where per-item batch work runs: in this process or on a distributed engine (Dask).

``map(fn, items)`` applies ``fn`` to every item and returns the results in the order of ``items``.
``fn`` and the items must be picklable (a module-level function or a ``functools.partial`` of one, frozen
dataclasses): an implementation may ship them to other processes or machines. A task that needs the
database opens its own connection from a DSN; a pool is never shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ComputeExecutor", "TaskPool"]


class ComputeExecutor(Protocol):
    @property
    def description(self) -> str:
        """Where the work runs, for logs and reports (never a secret)."""
        ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, possibly in parallel; the first failure is raised."""
        ...


@runtime_checkable
class TaskPool(ComputeExecutor, Protocol):
    """An executor that also takes tasks one at a time, so a caller can start each task as soon as its
    item is ready (and do its own work meanwhile) instead of waiting for the whole list."""

    def submit(self, fn: Callable[[T], R], item: T) -> Future[R]:
        """Start ``fn(item)``; the future holds its result or its error."""
        ...

    def result(self, future: Future[R]) -> R:
        """The result of a future ``submit`` returned (its error raised as this executor names it)."""
        ...
