"""The historical mode's steps: sync and backfill, derive (roll-ups, features, labels), train, predict.

Every step is idempotent and resumable: re-running after a kill (or after success) continues where the
data stands (backfill_log for candles, newest stored row for features and labels, the deterministic
model version for training, upserts for signals). The steps run against ports only; the composition
root (``bootstrap.historical.run_historical``) opens the database and the broker and calls them in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from tickwise.core.side_fit import SideFit
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.backfill import (
    BackfillManager,
    BackfillReport,
    FetchTask,
    IntegrityReport,
    last_completed_session,
    session_range,
)
from tickwise.pipelines.historical.candle_checks import CandleQuality, FlagCounts, check_candles
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.date_chunks import session_cuts as chunk_bounds
from tickwise.pipelines.historical.instrument_derive import (
    DeriveJob,
    DeriveSpec,
    InstrumentDerived,
    add_integrity,
    derive_instrument,
)
from tickwise.pipelines.historical.instruments import InstrumentManager
from tickwise.pipelines.historical.oos import OosOptions, OosOutcome, write_oos_history
from tickwise.pipelines.historical.predict import PredictOutcome, predict_signals
from tickwise.pipelines.historical.progress import Reporter, StepProgress, TaskID
from tickwise.pipelines.historical.rollups import roll_up
from tickwise.pipelines.historical.train import TrainingLoads, TrainOutcome, train_model
from tickwise.pipelines.universe import select_universe
from tickwise.ports.booster_trainer import BoosterTrainer
from tickwise.ports.compute import ComputeExecutor, TaskPool
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.historical_source import HistoricalSource, InstrumentSource
from tickwise.ports.repositories import ModelRecord

__all__ = [
    "DeriveJob",
    "DeriveSpec",
    "HistoricalSummary",
    "InstrumentDerived",
    "Reporter",
    "StepProgress",
    "chunk_bounds",
    "derive",
    "derive_instrument",
    "oos_step",
    "predict_step",
    "roll_up_all",
    "sync_and_backfill",
    "timed",
    "train_step",
]


@dataclass
class HistoricalSummary:
    instruments: int = 0
    first_day: date | None = None
    last_day: date | None = None
    backfill: BackfillReport | None = None
    integrity: IntegrityReport | None = None
    candle_flags: FlagCounts | None = None
    rollup_rows: dict[str, int] = field(default_factory=dict)
    feature_rows: int = 0
    label_rows: int = 0
    derive_chunks: int = 0  # (instrument, session range) chunks derived
    train: TrainOutcome | None = None
    retrain: str | None = None  # why training ran or was skipped (the retrain cadence)
    predict: PredictOutcome | None = None
    oos: OosOutcome | None = None  # the out-of-sample history written by the walk-forward fold models
    governance: list[str] = field(default_factory=list)  # promotion decisions, one line each
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def timed(summary: HistoricalSummary, name: str) -> Iterator[None]:
    """Record the wall time of the block in ``summary.timings[name]`` (seconds, 2 decimals)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        summary.timings[name] = round(time.perf_counter() - began, 2)


async def sync_and_backfill(
    ctx: HistoricalPorts,
    instruments: InstrumentSource,
    candles: HistoricalSource,
    now: datetime,
    reporter: StepProgress,
    summary: HistoricalSummary,
    *,
    first: date | None = None,
    last: date | None = None,
    symbols: Sequence[str] = (),
    timeframe: Timeframe = Timeframe.M1,
    sync: bool = True,
) -> list[Instrument]:
    """Sync the instrument master from ``instruments``, then backfill the missing days from ``candles``
    (``now``: the broker's clock, which decides the last completed session)."""
    options = ctx.options
    if sync:
        with timed(summary, "sync"):
            task = reporter.task("instruments sync", 1)
            result = await InstrumentManager(instruments, ctx.instruments, today=lambda: now.date()).sync()
            reporter.update(task, completed=1, info=f"{result.total} active")
    universe = await select_universe(ctx.instruments, symbols or options.symbols, options.default_symbols)
    last_day = last or last_completed_session(now, ctx.calendar)
    first_day = first or session_range(last_day, options.backfill_days, ctx.calendar)[0]
    summary.instruments, summary.first_day, summary.last_day = len(universe), first_day, last_day
    with timed(summary, "backfill"):
        task = reporter.task(f"backfill {timeframe}", None)
        manager = BackfillManager(
            candles, ctx.candles, ctx.backfill_log, calendar=ctx.calendar, timeframe=timeframe
        )
        rows = [0]

        def on_plan(n: int) -> None:
            reporter.update(
                task, total=max(n, 1), completed=0 if n else 1, info="nothing missing" if not n else ""
            )

        def on_done(done: FetchTask, n: int) -> None:
            rows[0] += n
            reporter.update(task, advance=1, info=f"{rows[0]:,} candles")

        summary.backfill = await manager.run(universe, first_day, last_day, on_plan=on_plan, on_done=on_done)
    return universe


async def roll_up_all(ctx: HistoricalPorts, universe: Sequence[Instrument]) -> dict[str, int]:
    """Roll each instrument's stored 1m candles up to the configured timeframes; rows per timeframe."""
    written: dict[str, int] = {}
    for inst in universe:
        candles = await ctx.candles.read_frame(inst.instrument_token, Timeframe.M1, None, None)
        for tf, n in (await roll_up(candles, ctx.options.timeframes, ctx.candles, ctx.calendar)).items():
            written[tf] = written.get(tf, 0) + n
    return written


def _merge(
    summary: HistoricalSummary,
    integrity: IntegrityReport,
    part: InstrumentDerived,
    quality: CandleQuality | None = None,
) -> None:
    if part.flag_counts is not None:
        summary.candle_flags = summary.candle_flags or FlagCounts()
        summary.candle_flags.add(part.flag_counts)
    if quality is not None:
        for check, action, bars in part.flagged:
            quality.hooks.on_candles_flagged(check, action, bars)
    if part.integrity is not None:
        add_integrity(integrity, part.integrity)
    for tf, n in part.rollup_rows.items():
        summary.rollup_rows[tf] = summary.rollup_rows.get(tf, 0) + n
    summary.feature_rows += part.feature_rows
    summary.label_rows += part.label_rows
    summary.derive_chunks += part.chunks
    summary.timings["rollups"] = round(summary.timings.get("rollups", 0.0) + part.rollup_seconds, 2)


async def _job_of(
    ctx: HistoricalPorts,
    inst: Instrument,
    quality: CandleQuality | None,
    summary: HistoricalSummary,
    *,
    check_in_task: bool = False,
) -> DeriveJob:
    """The instrument's derive job, its 1m candles checked first when ``quality`` is on (here, or by
    the task itself when ``check_in_task``)."""
    if quality is not None and check_in_task:
        return DeriveJob(inst, summary.first_day, summary.last_day, check=quality.config)
    flags = None
    if quality is not None:
        candles = await ctx.candles.read_frame(inst.instrument_token, Timeframe.M1, None, None)
        flags, counts = await check_candles(inst.instrument_token, candles, quality, ctx.calendar)
        summary.candle_flags = summary.candle_flags or FlagCounts()
        summary.candle_flags.add(counts)
    return DeriveJob(inst, summary.first_day, summary.last_day, flags)


async def derive(
    ctx: HistoricalPorts,
    universe: Sequence[Instrument],
    reporter: StepProgress,
    summary: HistoricalSummary,
    *,
    quality: CandleQuality | None = None,
    executor: ComputeExecutor | None = None,
    task: Callable[[DeriveJob], InstrumentDerived] | None = None,
) -> None:
    """Integrity check, roll-ups, features and labels per instrument (each signal timeframe).

    Without ``executor`` the instruments run here, one after the other, on the context's repositories.
    With ``executor`` and ``task`` (a picklable function that opens its own database connection, wired
    by the composition root) each instrument is one task on the executor (e.g. a Dask cluster); the
    rows written are the same, since every task runs ``derive_instrument`` on the same stored data.
    With ``quality`` the 1m candles are flagged first (``candle_checks``) and each task's labels leave
    out the bars the policy excludes: here, the flags travelling with the job, or, on an executor that
    takes tasks one at a time (``TaskPool``, a pool of this machine's processes), in the task itself
    (``DeriveJob.check``), so the checks run on every core too; the task then returns the counts, and
    ``quality.hooks`` hears of every flag here as if the checks had run here.
    """
    spec = DeriveSpec.of(ctx.options)
    integrity = IntegrityReport()
    pool = executor if isinstance(executor, TaskPool) and task is not None else None
    progress = reporter.task("rollups/features/labels", len(universe))
    jobs: list[DeriveJob] = []
    started: list[Future[InstrumentDerived]] = []
    for inst in universe:
        job = await _job_of(ctx, inst, quality, summary, check_in_task=pool is not None)
        if pool is not None and task is not None:
            started.append(pool.submit(task, job))
        jobs.append(job)
    if pool is not None:
        reporter.update(progress, info=f"{len(jobs)} tasks on {pool.description}")
        for job, future in zip(jobs, started, strict=True):
            _merge(summary, integrity, await asyncio.to_thread(pool.result, future), quality)
            reporter.update(progress, advance=1, info=job.instrument.tradingsymbol)
    elif executor is not None and task is not None:
        reporter.update(progress, info=f"{len(jobs)} tasks on {executor.description}")
        for part in await asyncio.to_thread(executor.map, task, jobs):
            _merge(summary, integrity, part)
        reporter.update(progress, completed=len(jobs), info="done")
    else:
        for job in jobs:
            part = await derive_instrument(ctx.candles, ctx.features, ctx.labels, ctx.calendar, spec, job)
            _merge(summary, integrity, part)
            reporter.update(progress, advance=1, info=job.instrument.tradingsymbol)
    summary.integrity = integrity


async def train_step(
    ctx: HistoricalPorts,
    reporter: StepProgress,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
    tracker_factory: Callable[[], ExperimentTracker] | None = None,
    trainer: BoosterTrainer[SideFit] | None = None,
    loads: TrainingLoads | None = None,
) -> TrainOutcome:
    """``train_model`` with one progress bar per training stage (``loads``: the run's shared loads)."""
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = reporter.task(f"train: {stage}", total)
        reporter.update(tasks[stage], completed=done, total=total)

    return await train_model(
        ctx,
        start=start,
        end=end,
        trials=trials,
        progress=progress,
        tracker_factory=tracker_factory,
        trainer=trainer,
        loads=loads,
    )


async def predict_step(
    ctx: HistoricalPorts,
    reporter: StepProgress,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    version: str | None = None,
) -> PredictOutcome:
    """``predict_signals`` with a progress bar over instruments."""
    task = reporter.task("predict (historical)", None)

    def progress(done: int, total: int) -> None:
        reporter.update(task, completed=done, total=total)

    return await predict_signals(ctx, start=start, end=end, version=version, progress=progress)


async def oos_step(
    ctx: HistoricalPorts,
    reporter: StepProgress,
    oos: OosOptions,
    *,
    tracker_factory: Callable[[], ExperimentTracker] | None = None,
    on_trained: Callable[[ModelRecord], Awaitable[None]] | None = None,
    trainer: BoosterTrainer[SideFit] | None = None,
    loads: TrainingLoads | None = None,
) -> OosOutcome:
    """``write_oos_history`` (walk-forward fold models, out-of-sample signals) with progress bars;
    ``loads``: the run's shared loads (the training step's load of the same timeframe is reused)."""
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = reporter.task(f"oos: {stage}", total)
        reporter.update(tasks[stage], completed=done, total=total)

    return await write_oos_history(
        ctx,
        oos,
        progress=progress,
        tracker_factory=tracker_factory,
        on_trained=on_trained,
        trainer=trainer,
        loads=loads,
    )
