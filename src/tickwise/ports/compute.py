"""Where per-item batch work runs: in this process or on a distributed engine (Dask).

``map(fn, items)`` applies ``fn`` to every item and returns the results in the order of ``items``.
``fn`` and the items must be picklable (a module-level function or a ``functools.partial`` of one, frozen
dataclasses): an implementation may ship them to other processes or machines. A task that needs the
database opens its own connection from a DSN; a pool is never shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ComputeExecutor"]


class ComputeExecutor(Protocol):
    @property
    def description(self) -> str:
        """Where the work runs, for logs and reports (never a secret)."""
        ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, possibly in parallel; the first failure is raised."""
        ...
