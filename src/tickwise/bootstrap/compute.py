"""Wiring of ``compute.scheduler``: the executor the derive step runs on, and the task each instrument
becomes there.

A task receives the DSN, the calendar and the ``DeriveSpec`` (all picklable), opens its own small pool in
the worker process and runs ``pipelines.historical.run.derive_instrument`` on the Timescale repositories:
a pool is never shipped, and the computation is the very function the inline path runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.adapters.dask.executor import open_dask
from tickwise.adapters.dask.lgbm import Partition
from tickwise.adapters.timescale import pool as pool_module
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.config import Settings
from tickwise.core.dataset import build_training_set
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.run import DeriveJob, DeriveSpec, InstrumentDerived, derive_instrument
from tickwise.ports.compute import ComputeExecutor

__all__ = [
    "DerivePlan",
    "PartitionJob",
    "WorkerSetup",
    "derive_in_worker",
    "derive_plan",
    "derive_task",
    "load_training_partition",
]


@dataclass(frozen=True)
class WorkerSetup:
    """What a derive task needs besides its job (shipped once per task, so kept small)."""

    dsn: str
    calendar: SessionCalendar
    spec: DeriveSpec


@dataclass(frozen=True)
class DerivePlan:
    """Keyword arguments of ``pipelines.historical.run.derive``: none for inline."""

    executor: ComputeExecutor | None = None
    task: Callable[[DeriveJob], InstrumentDerived] | None = None


async def _derive(setup: WorkerSetup, job: DeriveJob) -> InstrumentDerived:
    async with pool_module.open_pool(setup.dsn, min_size=1, max_size=2) as pool:
        return await derive_instrument(
            TimescaleCandleRepository(pool),
            TimescaleFeatureRepository(pool),
            TimescaleLabelRepository(pool),
            setup.calendar,
            setup.spec,
            job,
        )


def derive_in_worker(setup: WorkerSetup, job: DeriveJob) -> InstrumentDerived:
    """One instrument's derive, run where the executor puts it (its own event loop and connection)."""
    return asyncio.run(_derive(setup, job))


def derive_task(
    dsn: str, calendar: SessionCalendar, spec: DeriveSpec
) -> Callable[[DeriveJob], InstrumentDerived]:
    """The picklable per-instrument task for ``dsn``."""
    return functools.partial(derive_in_worker, WorkerSetup(dsn, calendar, spec))


@asynccontextmanager
async def derive_plan(
    settings: Settings, dsn: str, calendar: SessionCalendar, spec: DeriveSpec
) -> AsyncIterator[DerivePlan]:
    """The derive plan of ``compute.scheduler``; a local cluster lives as long as the block."""
    compute = settings.compute
    if compute.scheduler == "inline":
        yield DerivePlan()
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
    """One instrument's training rows for one side, as ``pipelines.historical.train.load_training_data``
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


async def _load_partition(job: PartitionJob) -> Partition:
    names = list(job.feature_names)
    async with pool_module.open_pool(job.dsn, min_size=1, max_size=2) as pool:
        features = await TimescaleFeatureRepository(pool).read_frame(
            job.token, job.timeframe, job.feature_set, None, job.end, columns=names
        )
        features = features.iloc[job.warmup :]
        if job.start is not None:
            features = features[pd.DatetimeIndex(features["time"]) >= pd.Timestamp(job.start)]
        labels = await TimescaleLabelRepository(pool).read_frame(job.token, job.timeframe, job.start, job.end)
    if features.empty or labels.empty:
        return Partition(np.empty((0, len(names))), np.empty(0, dtype=np.int8), np.empty(0))
    ts = build_training_set(
        features,
        labels,
        feature_set=job.feature_set,
        timeframe=str(job.timeframe),
        end=job.end,
        feature_names=names,
    )
    return Partition(ts.x, ts.y(job.side), ts.stored_weight(job.side))


def load_training_partition(job: PartitionJob) -> Partition:
    """One partition of the training matrix, read from TimescaleDB where the task runs (a Dask worker
    opens its own connection from the DSN): the matrix never passes through the client."""
    return asyncio.run(_load_partition(job))
