"""``compute.fit_workers``: LightGBM fits on every core, in worker processes (issue 14).

Each fit trains on one thread (``num_threads`` 1, ``deterministic``): a pure function of its rows,
labels, weights and parameters. The fits of a run that do not depend on each other (a model's two
sides, an Optuna trial's cv folds, the meta model's out-of-fold refits) are handed to a pool of worker
processes, started once per run (``spawn``: a fresh interpreter, no copy of this process's memory), and
their results are taken in their original order: the same boosters, bit for bit, as in one process
(``tests/unit/historical/test_fit_pool.py``), so the model versions, runs and signals do not change.

What travels: a job's bounded rows (at most ``max_train_rows`` of them, and the early-stopping tail),
gathered from the training set only when the job is sent (not when it is queued), its labels, weights
and parameters; back come the booster (as its text: thresholds and leaves exact), its rounds and the
gain importance, computed in the worker where the split gains are still exact.

A worker keeps the binned Datasets of the rows it last fitted (keyed by the rows' bytes), since the
same rows are fitted many times (both sides, every trial on one cv fold): binning costs about as much
as a fold's boosting. A worker that dies fails the run with a clear error, never a hang.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from tickwise.core.fit_jobs import BoosterJob, FitFuture, FittedBooster, JobRows, train_job
from tickwise.core.model import LgbParams, binned_dataset
from tickwise.core.side_fit import SideFit, job_of
from tickwise.domain.errors import ConfigError, ModelError

__all__ = ["FitPool", "WorkerDied", "open_fit_pool"]


class WorkerDied(ModelError):
    """A fit worker process ended without returning its fit (killed, out of memory, crashed)."""


@dataclass(frozen=True)
class _Sent:
    """A job as a worker receives it: the matrices gathered, the rest as the job has it."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    names: list[str]
    params: LgbParams
    num_boost_round: int
    valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    early_stopping_rounds: int | None


class _Outgoing:
    """A job on its way to a worker. It is pickled by the pool's feeder thread when a worker is about
    to take it, so its rows are gathered then: at most a few jobs' matrices exist at a time in this
    process, however many jobs are queued."""

    def __init__(self, job: BoosterJob) -> None:
        self.job = job

    def __reduce__(self) -> tuple[type[_Sent], tuple[object, ...]]:
        job = self.job
        valid = None if job.valid is None else (job.valid[0].gather(), job.valid[1], job.valid[2])
        return (
            _Sent,
            (
                job.train.gather(),
                job.y,
                job.weight,
                job.names,
                job.params,
                job.num_boost_round,
                valid,
                job.early_stopping_rounds,
            ),
        )


# In a worker: binned Datasets of the rows it fitted last, most recently used last.
_BINS: OrderedDict[bytes, lgb.Dataset] = OrderedDict()
_BINS_KEPT = 16


def _binned(key: bytes, build: object) -> lgb.Dataset:
    got = _BINS.get(key)
    if got is None:
        assert callable(build)
        got = build()
        _BINS[key] = got
        while len(_BINS) > _BINS_KEPT:
            _BINS.popitem(last=False)
    _BINS.move_to_end(key)
    return got


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _train_sent(sent: _Sent) -> FittedBooster:
    """Worker side: bin (or reuse the bins of the same rows) and train, as ``InlineRunner`` does."""
    max_bin = sent.params.get("max_bin", 63)
    key = _digest(
        np.ascontiguousarray(sent.x).view(np.uint8).ravel().tobytes(),
        repr((sent.x.shape, sent.names, max_bin)).encode(),
    )
    train = _binned(key, lambda: binned_dataset(sent.x, sent.names, max_bin))
    valid = None
    if sent.valid is not None:
        vx = np.ascontiguousarray(sent.valid[0], dtype=np.float64)
        vkey = _digest(key, vx.view(np.uint8).ravel().tobytes(), repr(vx.shape).encode())
        valid = _binned(vkey, lambda: lgb.Dataset(vx, reference=train))
    job = BoosterJob(
        _whole(sent.x),
        sent.y,
        sent.weight,
        sent.names,
        sent.params,
        sent.num_boost_round,
        None if sent.valid is None else (_whole(sent.valid[0]), sent.valid[1], sent.valid[2]),
        sent.early_stopping_rounds,
    )
    return train_job(job, train, valid)


def _whole(x: np.ndarray) -> JobRows:
    return JobRows(x, np.arange(x.shape[0]), np.arange(x.shape[1]))


class _PoolFuture:
    """A pool future whose broken pool reads as what happened: a worker died."""

    def __init__(self, future: Future[FittedBooster]) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> FittedBooster:
        try:
            return self._future.result(timeout)
        except BrokenProcessPool as exc:
            raise WorkerDied(_DIED) from exc

    def cancel(self) -> bool:
        return self._future.cancel()


_DIED = (
    "a LightGBM fit worker process died before returning its fit (killed, or out of memory?); "
    "the run stops here. Set compute.fit_workers: 1 to fit in this process"
)


class FitPool:
    """Worker processes that train ``BoosterJob``s (a ``core.fit_jobs.FitRunner``) and, for the
    pipelines' trainer seam, ``SideFit`` requests (a ``ports.booster_trainer.BoosterTrainer``)."""

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ConfigError(f"a fit pool needs at least 2 workers (1 fits in this process), got {workers}")
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    @property
    def provenance(self) -> Mapping[str, str | int]:
        return {}  # the same boosters as in this process: the same models, the same versions

    def submit(self, job: BoosterJob) -> FitFuture:
        try:
            future: Future[FittedBooster] = self._executor.submit(_train_outgoing, _Outgoing(job))
        except BrokenProcessPool as exc:
            raise WorkerDied(_DIED) from exc
        return _PoolFuture(future)

    def fit(self, request: SideFit) -> lgb.Booster:
        return self.submit(job_of(request)).result().booster

    def worker_pids(self) -> list[int]:
        """The worker processes started so far (they start as the first jobs arrive)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [int(pid) for pid in processes]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _train_outgoing(sent: object) -> FittedBooster:
    # Submitted as an _Outgoing, which pickles as a _Sent (``_Outgoing.__reduce__``): in the worker,
    # this receives the gathered rows.
    if not isinstance(sent, _Sent):
        raise TypeError(f"a fit worker received {type(sent).__name__}, not the gathered rows of a job")
    return _train_sent(sent)


@contextmanager
def open_fit_pool(workers: int) -> Iterator[FitPool]:
    """A pool of ``workers`` fit processes for the block (started as the first jobs arrive)."""
    pool = FitPool(workers)
    try:
        yield pool
    finally:
        pool.close()
