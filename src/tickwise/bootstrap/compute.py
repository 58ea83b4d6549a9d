"""Wiring of ``compute.scheduler``: the executor the derive step runs on, and the task each instrument
becomes there; and of ``model_training.distributed``: the booster trainer of the training steps.

A task is ``bootstrap.derive_worker``'s: the DSN, the calendar and the ``DeriveSpec`` (all picklable), its
own small pool in the worker process and ``derive_instrument`` on the Timescale repositories (a module of
its own, so a pool worker does not import this one's trainers).

Distributed training (``DaskTrainer``, docs/scaling.md): for one side's fit, this process decides which
rows train (the fit's rows and its ``max_train_rows`` subsample, as instrument and time only, never the
features) and ships one ``SidePartitionJob`` per instrument; the worker reads that instrument's features,
labels and closes from TimescaleDB, builds its rows as the training set was built (regime columns
included), recomputes the window's sample weights as ``core.fitting.training_weights`` does and keeps the
subsample; ``adapters.dask.lgbm.fit_distributed`` balances the classes over all partitions and trains.
The trainer lives here, not in ``adapters/dask``: it speaks ``core`` types, which adapters never import.

And the training load's spill (:func:`training_loads`): a run's loads keep each instrument's feature
matrix in a file under ``system.data_dir``/scratch (``adapters.local.row_spill``), removed at the end.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import asyncpg
import lightgbm as lgb
import numpy as np
import pandas as pd

from tickwise.adapters.dask.executor import open_dask
from tickwise.adapters.dask.lgbm import Partition, fit_distributed
from tickwise.adapters.local.process_pool import open_process_pool
from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.adapters.timescale import pool as pool_module
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.bootstrap.derive_worker import WorkerSetup, derive_in_worker, derive_task, warm_derive_worker
from tickwise.bootstrap.fit_pool import open_fit_pool
from tickwise.config import Settings
from tickwise.core.dataset import Bars, BarsBuilder, TrainingSet, training_set_of
from tickwise.core.fitting import TrainConfig, training_weights
from tickwise.core.model import lgb_params
from tickwise.core.regime import layer_of
from tickwise.core.side_fit import InProcessTrainer, SideFit, fit_rows
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.instrument_derive import DeriveJob, DeriveSpec, InstrumentDerived
from tickwise.pipelines.historical.regimes import with_bar_regime
from tickwise.pipelines.historical.train import TrainingLoads
from tickwise.ports.booster_trainer import BoosterTrainer
from tickwise.ports.compute import ComputeExecutor

__all__ = [
    "DaskTrainer",
    "DerivePlan",
    "PartitionJob",
    "SidePartitionJob",
    "WorkerSetup",
    "derive_in_worker",
    "derive_plan",
    "derive_task",
    "load_side_partition",
    "load_training_partition",
    "open_trainer",
    "side_partition_jobs",
    "training_loads",
    "warm_derive_worker",
]


@dataclass(frozen=True)
class DerivePlan:
    """Keyword arguments of ``pipelines.historical.run.derive``: none for inline."""

    executor: ComputeExecutor | None = None
    task: Callable[[DeriveJob], InstrumentDerived] | None = None


@asynccontextmanager
async def derive_plan(
    settings: Settings, dsn: str, calendar: SessionCalendar, spec: DeriveSpec
) -> AsyncIterator[DerivePlan]:
    """The derive plan of ``compute.scheduler``; a local cluster lives as long as the block."""
    compute = settings.compute
    if compute.scheduler == "inline":
        yield DerivePlan()
        return
    if compute.scheduler == "pool":
        with open_process_pool(compute.workers, warm_derive_worker) as pool:
            yield DerivePlan(pool, derive_task(dsn, calendar, spec))
        return
    # The cluster is started and stopped off the event loop: distributed's sync API runs its own loop.
    manager = open_dask(compute.scheduler, compute.workers)
    executor = await asyncio.to_thread(manager.__enter__)
    try:
        yield DerivePlan(executor, derive_task(dsn, calendar, spec))
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


@dataclass(frozen=True)
class PartitionJob:
    """One instrument's training rows for one side, as ``pipelines.historical.train.load_timeframe``
    selects them (warm feature rows from ``start``, labels ending by ``end``), loaded in a worker."""

    dsn: str
    token: int
    timeframe: Timeframe
    feature_set: str
    feature_names: tuple[str, ...]
    warmup: int
    side: int
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class _InstrumentRead:
    """What one instrument's rows are read from: ``pipelines.historical.train.load_timeframe``'s reads
    (features and labels of ``[start, end)``, warm rows only) and the training set's label cut."""

    token: int
    timeframe: Timeframe
    feature_set: str
    columns: list[str]
    warmup: int
    start: datetime | None
    end: datetime | None
    cut: datetime | None
    names: list[str]


async def _instrument_training_set(
    pool: asyncpg.Pool, read: _InstrumentRead, closes: Mapping[tuple[int, str], pd.Series] | None = None
) -> tuple[TrainingSet, Bars] | None:
    """One instrument's training set and bars, read and built as ``load_timeframe`` and
    ``TrainingData.training_set`` build the whole one; None without warm feature rows or labels."""
    matrix = await TimescaleFeatureRepository(pool).read_matrix(
        read.token, read.timeframe, read.feature_set, None, read.end, columns=read.columns
    )
    times, x = matrix.times[read.warmup :], matrix.values[read.warmup :]
    if read.start is not None:
        start_ns = pd.Timestamp(read.start).as_unit("ns").value
        times, x = times[times >= start_ns], x[times >= start_ns]
    labels = await TimescaleLabelRepository(pool).read_frame(read.token, read.timeframe, read.start, read.end)
    if len(times) == 0 or labels.empty:
        return None
    builder = BarsBuilder(read.columns)
    builder.add(read.token, times, np.ascontiguousarray(x))
    bars = builder.build()
    ts = training_set_of(
        bars,
        {read.token: labels},
        feature_set=read.feature_set,
        timeframe=str(read.timeframe),
        end=read.cut,
        feature_names=read.names,
        closes=closes,
    )
    return ts, bars


async def _load_partition(job: PartitionJob) -> Partition:
    names = list(job.feature_names)
    read = _InstrumentRead(
        job.token, job.timeframe, job.feature_set, names, job.warmup, job.start, job.end, job.end, names
    )
    async with pool_module.open_pool(job.dsn, min_size=1, max_size=2) as pool:
        built = await _instrument_training_set(pool, read)
    if built is None:
        return Partition(np.empty((0, len(names))), np.empty(0, dtype=np.int8), np.empty(0))
    ts, _ = built
    return Partition(np.asarray(ts.x), ts.y(job.side), ts.stored_weight(job.side))


def load_training_partition(job: PartitionJob) -> Partition:
    """One partition of the training matrix, read from TimescaleDB where the task runs (a Dask worker
    opens its own connection from the DSN): the matrix never passes through the client."""
    return asyncio.run(_load_partition(job))


@dataclass(frozen=True)
class SidePartitionJob:
    """One instrument's rows of one side's fit, loaded and prepared in a worker (module docstring).

    ``times``: the t0 (int64 ns, ascending) of the instrument's training rows; ``keep``: which of them
    the fit trains on (the ``max_train_rows`` subsample). ``start``/``end``/``regime``: the fit's
    ``FitSource`` (the load window and the regime layer whose columns the training set carries).
    """

    dsn: str
    token: int
    timeframe: Timeframe
    feature_set: str
    warmup: int
    read_columns: tuple[str, ...]  # the feature columns read: the stored features and the regime inputs
    base_features: tuple[str, ...]  # the training set's stored feature columns, in order
    feature_names: tuple[str, ...]  # the training set's columns (stored, then regime), as in this process
    feature_idx: tuple[int, ...]  # the fit's columns of ``feature_names``
    side: int
    times: np.ndarray
    keep: np.ndarray
    recompute_weights: bool
    start: datetime | None = None
    end: datetime | None = None
    regime: Mapping[str, object] | None = None


def side_partition_jobs(request: SideFit, dsn: str) -> list[SidePartitionJob]:
    """One job per instrument of ``request``'s rows (only their instrument and time leave this process)."""
    ts = request.ts
    timeframe = Timeframe(ts.timeframe)
    calculator = calculator_for(timeframe)
    if calculator.feature_set != ts.feature_set:
        raise ModelError(
            f"distributed training: the {timeframe} training set has feature set {ts.feature_set}, "
            f"this build computes {calculator.feature_set}"
        )
    layer = layer_of(request.source.regime)
    regime_columns = () if layer is None else layer.columns
    base = tuple(n for n in ts.feature_names if n not in regime_columns)
    if (*base, *regime_columns) != tuple(ts.feature_names):
        raise ModelError(
            "distributed training: the training set's columns are not its features then the regime's"
        )
    read = tuple(dict.fromkeys((*base, *(() if layer is None else layer.inputs))))
    rows, keep = fit_rows(request)
    tokens = ts.read("token", rows)
    t0 = ts.read("t0", rows)
    recompute = request.cfg.recompute_weights and bool(ts.closes)
    return [
        SidePartitionJob(
            dsn=dsn,
            token=int(token),
            timeframe=timeframe,
            feature_set=ts.feature_set,
            warmup=calculator.warmup,
            read_columns=read,
            base_features=base,
            feature_names=tuple(ts.feature_names),
            feature_idx=tuple(int(i) for i in request.feature_idx),
            side=request.side,
            times=t0[tokens == token],
            keep=keep[tokens == token],
            recompute_weights=recompute,
            start=request.source.start,
            end=request.source.end,
            regime=request.source.regime,
        )
        for token in np.unique(tokens)
    ]


async def _read_instrument(job: SidePartitionJob) -> tuple[TrainingSet, Bars] | None:
    # The very reads of pipelines.historical.train.load_timeframe, for one instrument. Every labelled
    # row is built (no t1 cut): the client chose the fit's rows (job.times).
    read = _InstrumentRead(
        job.token,
        job.timeframe,
        job.feature_set,
        list(job.read_columns),
        job.warmup,
        job.start,
        job.end,
        None,
        list(job.base_features),
    )
    async with pool_module.open_pool(job.dsn, min_size=1, max_size=2) as pool:
        candles = await TimescaleCandleRepository(pool).read_frame(job.token, job.timeframe, None, job.end)
        closes = {
            (job.token, str(job.timeframe)): pd.Series(
                candles["close"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(candles["time"])
            )
        }
        return await _instrument_training_set(pool, read, closes)


def load_side_partition(job: SidePartitionJob) -> Partition:
    """The instrument's partition of the fit, read from TimescaleDB where the task runs: the rows
    ``job.times`` with the fit's columns, 0/1 labels of ``job.side``, the window's recomputed weights
    (not yet class-balanced: ``fit_distributed`` balances over all partitions), subsampled by ``job.keep``."""
    built = asyncio.run(_read_instrument(job))
    if built is None:
        raise ModelError(f"distributed training: instrument {job.token} has no features or labels any more")
    ts, bars = built
    ts, _ = with_bar_regime(ts, bars, layer_of(job.regime))
    if tuple(ts.feature_names) != job.feature_names:
        raise ModelError(f"distributed training: instrument {job.token}'s columns differ from the client's")
    pos = pd.Index(ts.t0.as_unit("ns").asi8).get_indexer(job.times)
    if (pos < 0).any():
        raise ModelError(
            f"distributed training: {int((pos < 0).sum())} training rows of instrument {job.token} are no "
            "longer in the database (was it re-derived while training?)"
        )
    # Class balance off here: it is a sum over every partition (the factors of training_weights).
    weights = training_weights(
        ts, job.side, pos, TrainConfig(recompute_weights=job.recompute_weights, class_balance=False)
    )
    y = ts.y(job.side)[pos]
    balance = (float(weights[y == 1].sum()), float(weights.sum()))
    kept = pos[job.keep]
    x = ts.x[np.ix_(kept, np.asarray(job.feature_idx, dtype=np.int64))]
    return Partition(x, y[job.keep], weights[job.keep], balance)


class DaskTrainer:
    """``BoosterTrainer`` on a Dask cluster: ``lightgbm.dask`` over one partition per instrument, loaded
    by the workers (module docstring). Same parameters (``lgb_params`` with the fit's seed), rounds,
    class balance and ``max_train_rows`` rows as ``InProcessTrainer``; not the same model bit for bit
    (each worker bins its own rows: docs/scaling.md)."""

    def __init__(self, client: object, dsn: str, workers: int, timeout_s: float) -> None:
        self._client = client
        self._dsn = dsn
        self._workers = workers
        self.timeout_s = timeout_s  # model_training.distributed_timeout_s: each side's fit's deadline

    @property
    def provenance(self) -> Mapping[str, str | int]:
        return {"trainer": "dask", "trainer_workers": self._workers}

    def fit(self, request: SideFit) -> lgb.Booster:
        jobs = side_partition_jobs(request, self._dsn)
        if not jobs:
            raise ModelError("cannot train a model: no training rows")
        train = functools.partial(
            fit_distributed,
            self._client,
            [functools.partial(load_side_partition, job) for job in jobs],
            params=lgb_params(request.params, request.cfg.seed),
            num_boost_round=request.num_boost_round,
            feature_names=request.feature_names,
            class_balance=request.cfg.class_balance,
            timeout_s=self.timeout_s,
        )
        # distributed's blocking API is called off the pipeline's event loop thread (it runs its own loop).
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(train).result()


def _worker_count(client: object) -> int:
    from distributed import Client

    info = cast(Client, client).scheduler_info()
    return len(cast(dict[str, object], info.get("workers", {})))


@asynccontextmanager
async def open_trainer(settings: Settings, dsn: str) -> AsyncIterator[BoosterTrainer[SideFit]]:
    """The booster trainer of ``model_training.distributed``: in this process (``compute.fit_workers``
    1), in a pool of ``compute.fit_workers`` processes (the same models: bootstrap/fit_pool.py), or a
    ``DaskTrainer`` on ``compute.scheduler``'s cluster (a pool or local cluster lives as long as the
    block)."""
    if not settings.model_training.distributed:
        workers = settings.compute.fit_workers
        if workers < 2:
            yield InProcessTrainer()
            return
        with open_fit_pool(workers) as pool:
            yield pool
        return
    compute = settings.compute
    manager = open_dask(compute.scheduler, compute.workers)
    executor = await asyncio.to_thread(manager.__enter__)
    try:
        workers = await asyncio.to_thread(_worker_count, executor.client)
        if workers == 0:
            raise ConfigError(f"model_training.distributed: {executor.description} has no workers")
        yield DaskTrainer(executor.client, dsn, workers, settings.model_training.distributed_timeout_s)
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def scratch_dir(settings: Settings) -> Path:
    """Where a run's training loads spill their feature matrices (one subdirectory per run)."""
    return Path(settings.system.data_dir).resolve() / "scratch"


@asynccontextmanager
async def training_loads(settings: Settings) -> AsyncIterator[TrainingLoads]:
    """The loads of one run, each instrument's feature matrix and labels, and each training set's keys
    and labels, spilled to files under :func:`scratch_dir` (so the load's memory is the bars' keys and
    the closes); the files go with the block."""
    with ScratchRowSpill(scratch_dir(settings)) as spill:
        yield TrainingLoads(spill)
