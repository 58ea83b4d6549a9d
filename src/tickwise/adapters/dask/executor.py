"""``ComputeExecutor`` implementations: in this process, or on a Dask distributed cluster (whose API
is unannotated, hence the ``type: ignore[no-untyped-call]`` comments).

``compute.scheduler`` names the cluster: ``processes`` starts a ``distributed.LocalCluster`` of
``compute.workers`` single-threaded worker processes on this machine (one thread each: the kernels are
numba/TA-Lib and release no parallelism worth sharing a process for); ``tcp://host:8786`` (or
``tls://``) connects to a running scheduler whose workers have tickwise installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar, cast

from tickwise.domain.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["DaskExecutor", "InProcessExecutor", "is_remote_scheduler", "open_dask"]


class InProcessExecutor:
    """Runs every task here, one after the other: the same contract without a cluster."""

    @property
    def description(self) -> str:
        return "in-process"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


class DaskExecutor:
    """Submits one Dask task per item on ``client`` and gathers the results in order."""

    def __init__(self, client: object, description: str) -> None:
        self._client = client
        self._description = description

    @property
    def description(self) -> str:
        return self._description

    @property
    def client(self) -> object:
        """The ``distributed.Client`` itself (``lightgbm.dask`` trains through it)."""
        return self._client

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        from distributed import Client

        client = cast(Client, self._client)
        # pure=False: a task reads and writes the database, so two equal calls are not one result.
        futures = client.map(fn, list(items), pure=False)
        return cast(list[R], client.gather(futures))  # type: ignore[no-untyped-call]


def is_remote_scheduler(scheduler: str) -> bool:
    return scheduler.startswith(("tcp://", "tls://"))


@contextmanager
def open_dask(scheduler: str, workers: int) -> Iterator[DaskExecutor]:
    """A ``DaskExecutor`` on a new local process cluster (``processes``) or a scheduler address; the
    cluster (or the connection) is closed on exit. Blocking: call it off the event loop."""
    from distributed import Client, LocalCluster

    if scheduler == "processes":
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
        )
        try:
            # Not ``with Client(...)``: that sets a context variable, and callers enter and leave this
            # context manager on different threads (asyncio.to_thread), where resetting it fails.
            client = Client(cluster)  # type: ignore[no-untyped-call]
            try:
                yield DaskExecutor(client, f"dask LocalCluster ({workers} processes)")
            finally:
                client.close()  # type: ignore[no-untyped-call]
        finally:
            cluster.close()
    elif is_remote_scheduler(scheduler):
        try:
            client = Client(scheduler, timeout=10)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"compute.scheduler: cannot reach the Dask scheduler at {scheduler}: {exc}"
            ) from None
        try:
            yield DaskExecutor(client, f"dask scheduler {scheduler}")
        finally:
            client.close()  # type: ignore[no-untyped-call]
    else:
        raise ConfigError(
            f"compute.scheduler: {scheduler!r} is not 'inline', 'processes' or a tcp:// / tls:// address"
        )
