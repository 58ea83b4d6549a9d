"""``ComputeExecutor`` on a pool of local worker processes, started before the work is known.

``compute.scheduler: pool`` (docs/scaling.md): ``workers`` processes are spawned (a fresh interpreter,
no copy of this process's memory) as soon as the pool is opened, and each runs ``warm`` once, so their
imports and numba's cache loads are paid while this process still does something else (the
backfill). Tasks are then handed out one by one (``submit``) as this process makes them, or all at
once (``map``); results come back in the order of the items either way.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypeVar

from tickwise.domain.errors import ConfigError, TickwiseError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ProcessPoolCompute", "WorkerDied", "open_process_pool"]


class WorkerDied(TickwiseError):
    """A worker process ended without returning its task (killed, out of memory, failed start-up)."""


def _nothing() -> None:
    """A task that only makes the pool start a worker (spawned workers start on demand)."""


class ProcessPoolCompute:
    """Runs each task in one of ``workers`` spawned processes (module docstring)."""

    def __init__(self, pool: ProcessPoolExecutor, workers: int) -> None:
        self._pool = pool
        self._workers = workers

    @property
    def description(self) -> str:
        return f"process pool ({self._workers} processes)"

    def submit(self, fn: Callable[[T], R], item: T) -> Future[R]:
        """Start ``fn(item)`` on the next free worker; its result (or error) is the future's."""
        try:
            return self._pool.submit(fn, item)
        except BrokenProcessPool as exc:
            raise _worker_died(exc) from None

    def result(self, future: Future[R]) -> R:
        """``future.result()``, with a worker that died named as such."""
        return _result(future)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [_result(f) for f in [self.submit(fn, item) for item in items]]


def _result(future: Future[R]) -> R:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise _worker_died(exc) from None


def _worker_died(exc: BrokenProcessPool) -> WorkerDied:
    return WorkerDied(
        f"compute.scheduler: pool: a worker process ended without returning its task ({exc}): "
        "killed, out of memory, or its start-up failed"
    )


@contextmanager
def open_process_pool(workers: int, warm: Callable[[], None] | None = None) -> Iterator[ProcessPoolCompute]:
    """A pool of ``workers`` spawned processes, each running ``warm`` (a module-level function) when it
    starts; every worker is started now, not at the first task. The pool is shut down on exit (tasks
    not yet started are cancelled when the block raises)."""
    if workers < 1:
        raise ConfigError(f"compute.workers must be at least 1, not {workers}")
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=warm)
    failed = False
    try:
        # Spawned workers start on demand, one per task without an idle worker: ask for all of them.
        for _ in range(workers):
            pool.submit(_nothing)
        yield ProcessPoolCompute(pool, workers)
    except BaseException:
        failed = True
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=failed)
