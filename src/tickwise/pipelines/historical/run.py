"""The historical mode's steps: sync and backfill, derive (roll-ups, features, labels), train, predict.

Every step is idempotent and resumable: re-running after a kill (or after success) continues where the
data stands (backfill_log for candles, newest stored row for features and labels, the deterministic
model version for training, upserts for signals). The steps run against ports only; the composition
root (``bootstrap.historical.run_historical``) opens the database and the broker and calls them in order.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.core.candle_flags import CandleCheckConfig, exclude_labels
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.chunked import ChunkedFeatures
from tickwise.core.labels import LabelSpec
from tickwise.core.labels.chunked import label_chunks
from tickwise.core.side_fit import SideFit
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.backfill import (
    BackfillManager,
    BackfillReport,
    FetchTask,
    IntegrityReport,
    integrity_report,
    last_completed_session,
    session_range,
)
from tickwise.pipelines.historical.build_features import build_features
from tickwise.pipelines.historical.build_labels import build_labels, flags_on
from tickwise.pipelines.historical.candle_checks import CandleQuality, FlagCounts, check_candles
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.date_chunks import session_cuts as chunk_bounds
from tickwise.pipelines.historical.instruments import InstrumentManager
from tickwise.pipelines.historical.oos import OosOptions, OosOutcome, write_oos_history
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.pipelines.historical.predict import PredictOutcome, predict_signals
from tickwise.pipelines.historical.progress import Reporter, StepProgress, TaskID
from tickwise.pipelines.historical.rollups import roll_up
from tickwise.pipelines.historical.train import TrainingLoads, TrainOutcome, train_model
from tickwise.pipelines.universe import select_universe
from tickwise.ports.booster_trainer import BoosterTrainer
from tickwise.ports.compute import ComputeExecutor, TaskPool
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.historical_source import HistoricalSource, InstrumentSource
from tickwise.ports.repositories import CandleRepository, FeatureRepository, LabelRepository, ModelRecord

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


@dataclass(frozen=True)
class DeriveSpec:
    """What derive computes (from ``HistoricalOptions``): plain and picklable, so a task on another
    process or machine computes exactly what this one would."""

    timeframes: tuple[Timeframe, ...]
    signal_timeframe: Timeframe
    label_spec: LabelSpec
    signal_timeframes: tuple[Timeframe, ...] = ()  # all of them, the primary first (empty: the primary)
    chunk_sessions: int = 40  # sessions per chunk of one instrument's history (compute.chunk_sessions)

    @classmethod
    def of(cls, options: HistoricalOptions) -> DeriveSpec:
        return cls(
            tuple(options.timeframes),
            options.signal_timeframe,
            options.label_spec,
            options.all_signal_timeframes,
            options.chunk_sessions,
        )


@dataclass(frozen=True)
class DeriveJob:
    """One instrument's derive task: its stored history from the anchor, chunk after chunk."""

    instrument: Instrument
    first_day: date | None
    last_day: date | None
    # The candle checks' flags of the 1m bars (``candle_checks``), when the quality policy is on: the
    # labels leave out the bars it excludes.
    flags: pd.DataFrame | None = None
    # Or the checks' thresholds, when the task checks the candles itself (a pool worker: the checks
    # then run on every core too) and writes the flags before it derives.
    check: CandleCheckConfig | None = None


@dataclass(frozen=True)
class InstrumentDerived:
    """What one instrument's derive task wrote (and the integrity of its 1m candles)."""

    token: int
    integrity: IntegrityReport | None
    rollup_rows: dict[str, int]
    feature_rows: int
    label_rows: int
    rollup_seconds: float
    chunks: int = 1
    # What the task's own candle checks flagged (``DeriveJob.check``): the counts, and each
    # (check, action, bars) for the hooks of the process that merges the results.
    flag_counts: FlagCounts | None = None
    flagged: tuple[tuple[str, str, int], ...] = ()


def _days_of(start: datetime | None, end: datetime | None, job: DeriveJob) -> tuple[date, date] | None:
    """The job's integrity window cut to one chunk (None when the job has none)."""
    if job.first_day is None or job.last_day is None:
        return None
    lo = job.first_day if start is None else max(job.first_day, start.astimezone(IST).date())
    hi = job.last_day if end is None else min(job.last_day, (end - timedelta(days=1)).astimezone(IST).date())
    return lo, hi


def _add_integrity(total: IntegrityReport, part: IntegrityReport) -> None:
    total.sessions += part.sessions
    total.complete_sessions += part.complete_sessions
    total.partial_sessions += part.partial_sessions
    total.empty_sessions += part.empty_sessions
    total.invalid_candles += part.invalid_candles


async def _write_new_features(
    token: int,
    frame: pd.DataFrame,
    calc: FeatureCalculator,
    feature_repo: FeatureRepository,
    start: datetime | None,
    end: datetime | None,
) -> int:
    """Write the chunk's rows newer than the newest row already stored in the chunk (resumable)."""
    stored = await feature_repo.read_frame(token, Timeframe.M1, calc.feature_set, start, end, columns=[])
    if len(stored):
        frame = frame[pd.DatetimeIndex(frame["time"]) > pd.DatetimeIndex(stored["time"]).max()]
    if frame.empty:
        return 0
    frame.insert(0, "timeframe", str(Timeframe.M1))
    frame.insert(0, "instrument_token", token)
    return int(await feature_repo.add_frame(frame, calc.feature_set))


async def _write_labels(
    token: int,
    history: pd.DataFrame,
    starts: list[int],
    spec: DeriveSpec,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    flags: pd.DataFrame | None,
) -> int:
    """Both sides' labels chunk by chunk (``core.labels.chunked``: equal to one pass over the history);
    a chunk whose newest event is stored on both sides is skipped (resumable, idempotent)."""
    written = 0
    for frame in label_chunks(
        history, starts, spec.label_spec, Timeframe.M1, calendar, instrument_token=token
    ):
        if flags is not None:
            frame = exclude_labels(frame, flags)
        if frame.empty:
            continue
        stored = await label_repo.read_frame(token, Timeframe.M1, pd.Timestamp(frame["time"].max()), None)
        if len(stored) >= 2:
            continue
        written += int(await label_repo.add_frame(frame))
    return written


async def _derive_chunked(
    candle_repo: CandleRepository,
    feature_repo: FeatureRepository,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    spec: DeriveSpec,
    job: DeriveJob,
) -> InstrumentDerived:
    """The 1m signal timeframe, one chunk of ``spec.chunk_sessions`` sessions at a time.

    Each chunk is read, rolled up (sessions never span chunks), and its features are computed from the
    previous chunk's carry (``core.features.chunked``: bit-identical to one pass from the anchor) and
    written; then the chunk's frames are dropped. The labels come last, from the carried 1m inputs, in
    the same chunks (``core.labels.chunked``: their ATR runs from the anchor and their weights are
    normalised over the whole history, so they equal the single pass too).
    """
    token = job.instrument.instrument_token
    first = await candle_repo.first_time(token, Timeframe.M1)
    last = await candle_repo.last_time(token, Timeframe.M1)
    integrity = IntegrityReport() if job.first_day and job.last_day else None
    rollup_rows: dict[str, int] = {}
    feature_rows = label_rows = chunks = 0
    rollup_seconds = 0.0
    calc = FeatureCalculator()
    chunked = ChunkedFeatures(calc)
    carry = chunked.start()
    times: list[pd.DatetimeIndex] = []
    cuts: list[datetime | None] = []
    if first is not None and last is not None:
        cuts = [None, *chunk_bounds(first, last, spec.chunk_sessions, calendar), None]
    elif integrity is not None and job.first_day and job.last_day:
        empty = await candle_repo.read_frame(token, Timeframe.M1, None, None)
        _add_integrity(integrity, integrity_report(empty, [token], job.first_day, job.last_day, calendar))
    for start, end in itertools.pairwise(cuts):
        candles = await candle_repo.read_frame(token, Timeframe.M1, start, end)
        days = _days_of(start, end, job)
        if integrity is not None and days is not None:
            _add_integrity(integrity, integrity_report(candles, [token], days[0], days[1], calendar))
        if candles.empty:
            continue
        chunks += 1
        began = time.perf_counter()
        for tf, n in (await roll_up(candles, spec.timeframes, candle_repo, calendar)).items():
            rollup_rows[str(tf)] = rollup_rows.get(str(tf), 0) + n
        rollup_seconds += time.perf_counter() - began
        frame, carry = chunked.compute(candles.reset_index(drop=True), carry)
        feature_rows += await _write_new_features(token, frame, calc, feature_repo, start, end)
        times.append(pd.DatetimeIndex(candles["time"]))
        del frame, candles
    if carry.bars:
        history = pd.DataFrame(dict(zip(("open", "high", "low", "close"), carry.inputs[:4], strict=True)))
        history.insert(0, "time", times[0].append(times[1:]) if len(times) > 1 else times[0])
        starts = np.cumsum([0, *(len(t) for t in times[:-1])]).tolist()
        label_rows = await _write_labels(token, history, starts, spec, label_repo, calendar, job.flags)
    return InstrumentDerived(
        token=token,
        integrity=integrity,
        rollup_rows=rollup_rows,
        feature_rows=feature_rows,
        label_rows=label_rows,
        rollup_seconds=rollup_seconds,
        chunks=chunks,
    )


async def derive_instrument(
    candle_repo: CandleRepository,
    feature_repo: FeatureRepository,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    spec: DeriveSpec,
    job: DeriveJob,
) -> InstrumentDerived:
    """Integrity check, roll-ups, then features and labels of one instrument for every signal timeframe
    (the unit a task runs).

    With the 1m primary timeframe (the default) the 1m history is derived in chunks of
    ``spec.chunk_sessions`` sessions, so a task's memory is bounded by the chunk, not the history; the
    5m/15m signal timeframes then read the roll-ups just written (5 and 15 times fewer bars), each with
    its own calculator (``core.timeframe_features``), and their labels leave out the events whose window
    holds an excluded 1m bar."""

    async def labels_of(token: int, base: pd.DataFrame, timeframe: Timeframe) -> int:
        flags = flags_on(job.flags, timeframe, calendar)
        labelled = await build_labels(
            token, base, spec.label_spec, label_repo, timeframe, calendar, flags=flags
        )
        return labelled.written

    if spec.signal_timeframe is Timeframe.M1:
        part = await _derive_chunked(candle_repo, feature_repo, label_repo, calendar, spec, job)
        token = job.instrument.instrument_token
        feature_rows, label_rows = part.feature_rows, part.label_rows
        for timeframe in spec.signal_timeframes:
            if timeframe is Timeframe.M1:
                continue
            base = await candle_repo.read_frame(token, timeframe, None, None)
            written = await build_features(token, base, calculator_for(timeframe), feature_repo, timeframe)
            feature_rows += written.written
            label_rows += await labels_of(token, base, timeframe)
        return replace(part, feature_rows=feature_rows, label_rows=label_rows)
    token = job.instrument.instrument_token
    candles = await candle_repo.read_frame(token, Timeframe.M1, None, None)
    integrity = None
    if job.first_day and job.last_day:
        integrity = integrity_report(candles, [token], job.first_day, job.last_day, calendar)
    began = time.perf_counter()
    rollup_rows = await roll_up(candles, spec.timeframes, candle_repo, calendar)
    rollup_seconds = time.perf_counter() - began
    feature_rows = label_rows = 0
    for timeframe in spec.signal_timeframes or (spec.signal_timeframe,):
        base = (
            candles
            if timeframe is Timeframe.M1
            else await candle_repo.read_frame(token, timeframe, None, None)
        )
        if timeframe is Timeframe.M1 or timeframe in spec.signal_timeframes:
            calculator = FeatureCalculator() if timeframe is Timeframe.M1 else calculator_for(timeframe)
            feature_rows += (await build_features(token, base, calculator, feature_repo, timeframe)).written
        label_rows += await labels_of(token, base, timeframe)
    return InstrumentDerived(
        token=token,
        integrity=integrity,
        rollup_rows={str(tf): n for tf, n in rollup_rows.items()},
        feature_rows=feature_rows,
        label_rows=label_rows,
        rollup_seconds=rollup_seconds,
    )


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
        _add_integrity(integrity, part.integrity)
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
