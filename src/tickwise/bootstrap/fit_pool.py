"""``compute.fit_workers``: LightGBM fits on every core, in worker processes (issue 14).

Each fit trains on one thread (``num_threads`` 1, ``deterministic``): a pure function of its rows,
labels, weights and parameters. The fits of a run that do not depend on each other (a model's two
sides, an Optuna trial's cv folds, the meta model's out-of-fold refits) are handed to a pool of worker
processes, started once per run (``spawn``: a fresh interpreter, no copy of this process's memory), and
their results are taken in their original order: the same boosters, bit for bit, as in one process
(``tests/unit/historical/test_fit_pool.py``), so the model versions, runs and signals do not change.

What travels: a job's bounded rows (at most ``max_train_rows`` of them, and the early-stopping tail),
its labels, weights and parameters; back come the booster (as its text: thresholds and leaves exact),
its rounds and the gain importance, computed in the worker where the split gains are still exact. Rows
of a training load spilled to disk (``adapters.local.row_spill``: every instrument's matrix and the
bars' keys are files under the run's scratch directory) travel **by reference**: the files' paths, the
rows' bar positions and the few per-bar columns appended in memory (the regime layer's) of those rows;
the worker gathers the values from the files itself. Rows held only in memory are gathered here when
the job is sent (not when it is queued) and travel as a matrix. Either way the worker trains on the
same float64 matrix, bit for bit, that this process would.

A worker keeps the binned Datasets of the rows it last fitted (keyed by the rows: by reference, their
files, positions and columns; else the rows' bytes), since the same rows are fitted many times (both
sides, every trial on one cv fold): binning costs about as much as a fold's boosting, and a job by
reference whose rows a worker has binned is not even gathered. So a job goes to the worker that was
sent its rows last, unless that worker has more jobs waiting than another (``_Lanes``): both sides of a
fold, and every trial on one cv fold, are binned in one worker instead of in each (issue 14: the
second binning was about 5 % of a run's CPU). Where a job trains does not change its booster: a
worker bins the very matrix the other would. A worker that dies fails the run with a
clear error, never a hang; a job whose spill files are gone fails with a :class:`ModelError` naming
the file.

Training steps other than a booster fit go to the workers as tasks (``run_task``, a
``core.fit_jobs.TaskRunner``): a picklable call, such as a fold's regime layer fitted on a spilled
load's bars (``pipelines.historical.regimes.BarsLayerFit``), whose HMM fits on one BLAS/OpenMP thread
wherever it runs, so its result is the same bytes as in this process.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

import lightgbm as lgb
import numpy as np

from tickwise.adapters.local.row_spill import FileColumn, FileRows
from tickwise.core.dataset import Bars, RowMatrix
from tickwise.core.fit_jobs import (
    BoosterJob,
    FitFuture,
    FitTargets,
    FittedBooster,
    JobRows,
    TaskFuture,
    score_matrix,
    train_targets,
)
from tickwise.core.model import binned_dataset
from tickwise.core.side_fit import SideFit, job_of
from tickwise.domain.errors import ConfigError, ModelError

__all__ = ["FitPool", "SpilledRows", "WorkerDied", "bins_held", "open_fit_pool", "rows_key"]

R = TypeVar("R")


class WorkerDied(ModelError):
    """A fit worker process ended without returning its fit (killed, out of memory, crashed)."""


@dataclass(frozen=True)
class SpilledRows:
    """A job's rows by reference: bars ``bar`` (positions) of a spilled :class:`Bars`, columns
    ``bar_cols`` of the bars at the job's columns ``from_bars``, and the values of the per-bar columns
    appended in memory (``extra``: ``len(bar)`` rows, one column per job column not from the bars).
    Pickled, it is the files' paths and these small arrays, not the rows' values."""

    bars: Bars
    bar: np.ndarray
    bar_cols: np.ndarray
    from_bars: np.ndarray
    extra: np.ndarray

    @classmethod
    def of(cls, rows: JobRows) -> SpilledRows | None:
        """``rows`` by reference when their matrix is gathered from spilled bars, else ``None``."""
        x = rows.x
        if not isinstance(x, RowMatrix) or not _on_disk(x.bars):
            return None
        idx = np.asarray(rows.cols, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= x.shape[1]):
            raise IndexError(f"column positions outside 0..{x.shape[1] - 1}")
        bar = x.rows.read(np.asarray(rows.rows).ravel())
        k = len(x.cols)
        from_bars = idx < k
        if x.extra is None or from_bars.all():
            extra = np.empty((len(bar), 0), dtype=np.float64)
        else:
            extra = x.extra[np.ix_(bar, idx[~from_bars] - k)]
        return cls(x.bars, bar, x.cols[idx[from_bars]], from_bars, extra)

    def __len__(self) -> int:
        return len(self.bar)

    def part(self, i: int, j: int) -> SpilledRows:
        """Rows ``i:j`` of these (by reference too): a window of a fold's test rows."""
        return SpilledRows(self.bars, self.bar[i:j], self.bar_cols, self.from_bars, self.extra[i:j])

    def identity(self) -> bytes:
        """What names these rows' values: the spill files (never rewritten while they exist), the bar
        positions, the columns, and the appended columns' values."""
        files = [part.path for part in self.bars.parts if isinstance(part, FileRows)]
        source = self.bars.keys["source"]
        files.append(source.path if isinstance(source, FileColumn) else Path())
        return _digest(
            b"spilled",
            "|".join(map(str, files)).encode(),
            np.ascontiguousarray(self.bar, dtype=np.int64).tobytes(),
            np.ascontiguousarray(self.bar_cols, dtype=np.int64).tobytes(),
            np.ascontiguousarray(self.from_bars, dtype=np.bool_).tobytes(),
            np.ascontiguousarray(self.extra, dtype=np.float64).tobytes(),
            repr(self.extra.shape).encode(),
        )

    def gather(self) -> np.ndarray:
        """The float64 matrix ``JobRows.gather`` gives in the sending process, bit for bit (read from
        the spill files here). A spill file that is gone is a :class:`ModelError` naming it."""
        try:
            if self.from_bars.all():
                x = self.bars.take(self.bar, self.bar_cols)
            else:
                x = np.empty((len(self.bar), len(self.from_bars)), dtype=np.float64)
                if self.from_bars.any():
                    x[:, self.from_bars] = self.bars.take(self.bar, self.bar_cols)
                x[:, ~self.from_bars] = self.extra
        except FileNotFoundError as exc:
            raise ModelError(
                f"a fit job's rows are read from the training load's spill files, and {exc.filename} is "
                "gone (was the run's scratch directory removed while it ran?)"
            ) from None
        return np.ascontiguousarray(x, dtype=np.float64)


def _on_disk(bars: Bars) -> bool:
    """Every part and the bars' positions are spill files, so a copy pickles as their paths."""
    return all(isinstance(part, FileRows) for part in bars.parts) and isinstance(
        bars.keys.get("source"), FileColumn
    )


def _outgoing_rows(rows: JobRows) -> np.ndarray | SpilledRows:
    """A job's rows as they travel: by reference when spilled, else gathered now."""
    return SpilledRows.of(rows) or rows.gather()


@dataclass(frozen=True)
class _Sent:
    """A job as a worker receives it: its rows (gathered, or by reference) and its targets."""

    train: np.ndarray | SpilledRows
    valid: np.ndarray | SpilledRows | None
    targets: FitTargets
    score: SpilledRows | None = None  # rows the worker scores with the booster (spilled rows only)


class _Outgoing:
    """A job on its way to a worker. It is pickled by the pool's feeder thread when a worker is about
    to take it, so rows held in memory are gathered then: at most a few jobs' matrices exist at a time
    in this process, however many jobs are queued."""

    def __init__(self, job: BoosterJob) -> None:
        self.job = job

    def __reduce__(self) -> tuple[type[_Sent], tuple[object, ...]]:
        job = self.job
        valid = None if job.valid is None else _outgoing_rows(job.valid[0])
        # Rows to score travel by reference only: rows held in memory would be gathered and pickled
        # here for every trial, which costs this process about what scoring them does.
        score = None if job.score is None else SpilledRows.of(job.score)
        return (_Sent, (_outgoing_rows(job.train), valid, FitTargets.of(job), score))


# In a worker: binned Datasets of the rows it fitted last, most recently used last.
_BINS: OrderedDict[bytes, lgb.Dataset] = OrderedDict()
_BINS_KEPT = 16


def _binned(key: bytes, build: Callable[[], lgb.Dataset]) -> lgb.Dataset:
    got = _BINS.get(key)
    if got is None:
        got = build()
        _BINS[key] = got
        while len(_BINS) > _BINS_KEPT:
            _BINS.popitem(last=False)
    _BINS.move_to_end(key)
    return got


def bins_held() -> int:
    """How many binned Datasets this process keeps (in a worker: the rows it has binned, at most
    ``_BINS_KEPT``); what shows where a pool's jobs were binned."""
    return len(_BINS)


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _identity(rows: np.ndarray | SpilledRows) -> bytes:
    if isinstance(rows, SpilledRows):
        return rows.identity()
    x = np.ascontiguousarray(rows, dtype=np.float64)
    return _digest(b"gathered", x.view(np.uint8).ravel().tobytes(), repr(x.shape).encode())


def _matrix(rows: np.ndarray | SpilledRows) -> np.ndarray:
    return rows.gather() if isinstance(rows, SpilledRows) else np.ascontiguousarray(rows, dtype=np.float64)


def _train_sent(sent: _Sent) -> FittedBooster:
    """Worker side: bin (or reuse the bins of the same rows) and train, as ``InlineRunner`` does."""
    targets = sent.targets
    max_bin = targets.params.get("max_bin", 63)
    key = _digest(_identity(sent.train), repr((targets.names, max_bin)).encode())
    train = _binned(key, lambda: binned_dataset(_matrix(sent.train), targets.names, max_bin))
    valid = None
    if sent.valid is not None:
        tail = sent.valid
        valid = _binned(_digest(key, _identity(tail)), lambda: lgb.Dataset(_matrix(tail), reference=train))
    fitted = train_targets(targets, train, valid)
    if sent.score is None:
        return fitted
    rows = sent.score
    scores = score_matrix(fitted.booster, lambda i, j: rows.part(i, j).gather(), len(rows), fitted.rounds)
    return replace(fitted, scores=scores)


class _PoolFuture(Generic[R]):
    """A pool future whose broken pool reads as what happened: a worker died."""

    def __init__(self, future: Future[R]) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> R:
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


def rows_key(job: BoosterJob) -> bytes:
    """What routes a job: its training rows' positions and columns (both sides of a fold, and every
    trial on one cv fold, train on the same ones). Only a hint: a worker reuses bins by the rows' full
    identity (``_train_sent``), so two jobs that share a key but not their rows are each binned."""
    rows = job.train
    return _digest(
        np.ascontiguousarray(rows.rows, dtype=np.int64).tobytes(),
        np.ascontiguousarray(rows.cols, dtype=np.int64).tobytes(),
    )


class _Lanes:
    """Which worker a job goes to: the one its rows were last sent to, while that worker has at most
    ``slack`` jobs more waiting than the least busy one; else the least busy (the lowest first), which
    then holds the rows. Tasks and jobs without a key go to the least busy. Thread-safe: the training
    thread and the event loop submit at once."""

    def __init__(self, lanes: int, slack: int = 1, remembered: int = 4 * _BINS_KEPT) -> None:
        self._waiting = [0] * lanes
        self._slack = slack
        self._holder: OrderedDict[bytes, int] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    def take(self, key: bytes | None = None) -> int:
        """The lane for a job with rows ``key`` (None: a task), counted as waiting until :meth:`done`."""
        with self._lock:
            least = min(range(len(self._waiting)), key=self._waiting.__getitem__)
            lane = least if key is None else self._holder.get(key, least)
            if self._waiting[lane] > self._waiting[least] + self._slack:
                lane = least
            if key is not None:
                self._holder[key] = lane
                self._holder.move_to_end(key)
                while len(self._holder) > self._remembered:
                    self._holder.popitem(last=False)
            self._waiting[lane] += 1
            return lane

    def done(self, lane: int) -> None:
        with self._lock:
            self._waiting[lane] -= 1


class FitPool:
    """Worker processes that train ``BoosterJob``s (a ``core.fit_jobs.FitRunner``), run the training
    steps given as tasks (a ``core.fit_jobs.TaskRunner``: a fold's regime layer) and, for the
    pipelines' trainer seam, ``SideFit`` requests (a ``ports.booster_trainer.BoosterTrainer``).

    Each worker is a one-process executor of its own, so a job can be sent to the worker that binned
    its rows (``_Lanes``); one worker that dies breaks the pool, as one dead process breaks a
    ``ProcessPoolExecutor``."""

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ConfigError(f"a fit pool needs at least 2 workers (1 fits in this process), got {workers}")
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._executors = [ProcessPoolExecutor(1, mp_context=context) for _ in range(workers)]
        self._lanes = _Lanes(workers)

    @property
    def provenance(self) -> Mapping[str, str | int]:
        return {}  # the same boosters as in this process: the same models, the same versions

    def submit(self, job: BoosterJob) -> FitFuture:
        return _PoolFuture(self._submit(rows_key(job), _train_outgoing, _Outgoing(job)))

    def run_task(self, task: Callable[[], R]) -> TaskFuture[R]:
        """``task()`` in a worker, queued behind the jobs submitted before it; the task and its result
        travel pickled (a spilled load's bars as their files' paths)."""
        return _PoolFuture(self._submit(None, task))

    def _submit(self, key: bytes | None, fn: Callable[..., R], *args: object) -> Future[R]:
        if any(getattr(executor, "_broken", False) for executor in self._executors):
            raise WorkerDied(_DIED)
        lane = self._lanes.take(key)
        try:
            future = self._executors[lane].submit(fn, *args)
        except BrokenProcessPool as exc:
            self._lanes.done(lane)
            raise WorkerDied(_DIED) from exc
        future.add_done_callback(lambda _: self._lanes.done(lane))
        return future

    def fit(self, request: SideFit) -> lgb.Booster:
        return self.submit(job_of(request)).result().booster

    def worker_pids(self) -> list[int]:
        """The worker processes started so far (they start as the first jobs arrive)."""
        pids: list[int] = []
        for executor in self._executors:
            processes = getattr(executor, "_processes", None) or {}
            pids.extend(int(pid) for pid in processes)
        return pids

    def close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)


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
