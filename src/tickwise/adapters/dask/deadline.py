"""A deadline on blocking work against a Dask cluster (``distributed``'s API is unannotated, hence the
``type: ignore[no-untyped-call]`` comments).

``lightgbm.dask`` can wait forever: its port-assignment step gathers futures that no worker ever runs
(LightGBM#4942, still open upstream), and a training task blocked in LightGBM's socket set-up holds its
worker's only thread. :func:`run_with_deadline` runs the work in a thread of this process and, when the
deadline passes, names the steps still pending, cancels every future of this client the work created
(which also ends the waiting thread: its ``gather`` raises; finished ones too, or the scheduler would
recompute them on the restarted workers) and restarts only the workers still executing one (a
cancelled task's thread cannot be stopped otherwise), so the cluster takes the next fit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from tickwise.domain.errors import ModelError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DeadlineExceeded", "run_with_deadline"]

T = TypeVar("T")

# How long restarting the workers that hold a hung task may take (a nanny restart takes seconds).
RESTART_TIMEOUT_S = 60.0


class DeadlineExceeded(ModelError):
    """Work on the Dask cluster did not finish within its deadline; it was cancelled."""


def run_with_deadline(client: object, work: Callable[[], T], *, timeout_s: float, what: str, hint: str) -> T:
    """``work()``'s result, or :class:`DeadlineExceeded` once ``timeout_s`` seconds passed without one.

    ``what`` names the work in the error, ``hint`` says what the user can do. On the deadline the
    client's futures made since the work started are cancelled (work on the same client from another
    thread meanwhile too: one piece of work per client at a time is assumed) and the workers executing
    them restarted (they need a Dask nanny, as ``LocalCluster`` and ``dask worker`` give them) before
    the error is raised.
    """
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()
    before = set(cast("Client", client).futures)

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    # A daemon thread: a hang that even cancelling cannot end must not keep the process alive.
    thread = threading.Thread(target=run, name="tickwise-dask-deadline", daemon=True)
    thread.start()
    if done.wait(timeout_s):
        if failure:
            raise failure[0]
        return outcome[0]
    pending, restart = _cancel_created(client, before)
    done.wait(RESTART_TIMEOUT_S)  # the cancelled gather raises in the thread; its error is moot
    raise DeadlineExceeded(
        f"{what} did not finish within {timeout_s:g} s; still pending: {pending or 'nothing named'}. "
        f"{restart} {hint}"
    )


def _cancel_created(client: object, before: set[object]) -> tuple[str, str]:
    """Cancel ``client``'s futures not in ``before`` and restart the workers executing one: (the
    pending steps by name, what happened to the cluster)."""
    from dask.utils import key_split
    from distributed import Client, Future

    dask_client = cast(Client, client)
    created = [key for key in list(dask_client.futures) if key not in before]
    states = dask_client.futures
    keys = [key for key in created if key in states and states[key].status == "pending"]
    mine = set(keys)
    processing = cast(dict[str, list[object]], dask_client.processing())  # type: ignore[no-untyped-call]
    busy = sorted(worker for worker, running in processing.items() if mine.intersection(running))
    steps = sorted({key_split(key) for key in keys})
    pending = ", ".join(f"{step} ({sum(key_split(k) == step for k in keys)})" for step in steps)
    dask_client.cancel([Future(key, dask_client) for key in created])  # type: ignore[no-untyped-call]
    if not busy:
        return pending, "No worker was executing them: the cluster is free."
    try:
        dask_client.restart_workers(busy, timeout=RESTART_TIMEOUT_S)
    except Exception as exc:  # a worker without a nanny cannot be restarted from here
        return pending, (
            f"Restarting the workers that were executing them ({', '.join(busy)}) failed ({exc!r}): "
            "restart the cluster's workers before the next fit."
        )
    return pending, f"The workers that were executing them were restarted: {', '.join(busy)}."
