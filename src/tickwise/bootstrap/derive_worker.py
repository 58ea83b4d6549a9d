"""A ``compute.scheduler`` derive task as a worker process runs it: one instrument's derive on its own
connection, the candle checks first.

A task receives the DSN, the calendar and the ``DeriveSpec`` (all picklable), opens its own small pool in
the worker process and runs ``pipelines.historical.instrument_derive.derive_instrument`` on the Timescale
repositories: a pool is never shipped, and the computation is the very function the inline path runs.

This module is what a pool worker imports (the task's and its start-up's module), so it imports only
the derive: not ``bootstrap.compute`` with the trainers, the fit pool, LightGBM and scikit-learn (issue 14:
about 1 CPU-s more per worker, of the 9-14 a worker uses in a run).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from tickwise.adapters.timescale import pool as pool_module
from tickwise.adapters.timescale.candle_flag_repository import TimescaleCandleFlagRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.historical.candle_checks import CandleQuality, check_candles
from tickwise.pipelines.historical.instrument_derive import (
    DeriveJob,
    DeriveSpec,
    InstrumentDerived,
    derive_instrument,
)

__all__ = ["WorkerSetup", "derive_in_worker", "derive_task", "warm_derive_worker"]


@dataclass(frozen=True)
class WorkerSetup:
    """What a derive task needs besides its job (shipped once per task, so kept small)."""

    dsn: str
    calendar: SessionCalendar
    spec: DeriveSpec


class _FlagTally(NullHooks):
    """The candle checks' flags of one task, for the hooks of the process that merges its result."""

    def __init__(self) -> None:
        self.flagged: list[tuple[str, str, int]] = []

    def on_candles_flagged(self, check: str, action: str, candles: int) -> None:
        self.flagged.append((check, action, candles))


async def _derive(setup: WorkerSetup, job: DeriveJob) -> InstrumentDerived:
    async with pool_module.open_pool(setup.dsn, min_size=1, max_size=2) as pool:
        candles = TimescaleCandleRepository(pool)
        counts, tally = None, _FlagTally()
        if job.check is not None:  # the checks of candle_checks, run here instead of in the client
            token = job.instrument.instrument_token
            frame = await candles.read_frame(token, Timeframe.M1, None, None)
            quality = CandleQuality(TimescaleCandleFlagRepository(pool), job.check, tally)
            flags, counts = await check_candles(token, frame, quality, setup.calendar)
            job = replace(job, flags=flags, check=None)
        part = await derive_instrument(
            candles,
            TimescaleFeatureRepository(pool),
            TimescaleLabelRepository(pool),
            setup.calendar,
            setup.spec,
            job,
        )
        return replace(part, flag_counts=counts, flagged=tuple(tally.flagged))


def derive_in_worker(setup: WorkerSetup, job: DeriveJob) -> InstrumentDerived:
    """One instrument's derive, run where the executor puts it (its own event loop and connection)."""
    return asyncio.run(_derive(setup, job))


def derive_task(
    dsn: str, calendar: SessionCalendar, spec: DeriveSpec
) -> Callable[[DeriveJob], InstrumentDerived]:
    """The picklable per-instrument task for ``dsn``."""
    return functools.partial(derive_in_worker, WorkerSetup(dsn, calendar, spec))


def warm_derive_worker() -> None:
    """A pool worker's start: import what a derive task runs and load the feature and label kernels
    from numba's cache (compile them when it is cold), on tiny inputs, before the first task comes."""
    from tickwise.bootstrap.warm import warm_derive

    warm_derive()
