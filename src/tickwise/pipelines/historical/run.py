"""The historical mode's steps: sync and backfill, derive (roll-ups, features, labels), train, predict.

Every step is idempotent and resumable: re-running after a kill (or after success) continues where the
data stands (backfill_log for candles, newest stored row for features and labels, the deterministic
model version for training, upserts for signals). The steps run against ports only; the composition
root (``bootstrap.historical.run_historical``) opens the database and the broker and calls them in order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.instrument import Instrument
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
from tickwise.pipelines.historical.build_labels import build_labels
from tickwise.pipelines.historical.candle_checks import CandleQuality, FlagCounts, check_candles
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.instruments import InstrumentManager
from tickwise.pipelines.historical.oos import OosOptions, OosOutcome, write_oos_history
from tickwise.pipelines.historical.predict import PredictOutcome, predict_signals
from tickwise.pipelines.historical.progress import Reporter, StepProgress, TaskID
from tickwise.pipelines.historical.rollups import roll_up
from tickwise.pipelines.historical.train import TrainOutcome, train_model
from tickwise.pipelines.universe import select_universe
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.historical_source import HistoricalSource, InstrumentSource
from tickwise.ports.repositories import ModelRecord

__all__ = [
    "HistoricalSummary",
    "Reporter",
    "StepProgress",
    "derive",
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


async def derive(
    ctx: HistoricalPorts,
    universe: Sequence[Instrument],
    reporter: StepProgress,
    summary: HistoricalSummary,
    *,
    quality: CandleQuality | None = None,
) -> None:
    """Integrity check, roll-ups, features and labels per instrument (1m = the signal timeframe).

    With ``quality`` the 1m candles are flagged first (``candle_checks``) and the labels leave out the
    bars the policy excludes."""
    options = ctx.options
    timeframe = options.signal_timeframe
    calculator = FeatureCalculator()
    spec = options.label_spec
    integrity = IntegrityReport()
    task = reporter.task("rollups/features/labels", len(universe))
    for inst in universe:
        token = inst.instrument_token
        candles = await ctx.candles.read_frame(token, Timeframe.M1, None, None)
        if summary.first_day and summary.last_day:
            part = integrity_report(candles, [token], summary.first_day, summary.last_day, ctx.calendar)
            integrity.sessions += part.sessions
            integrity.complete_sessions += part.complete_sessions
            integrity.partial_sessions += part.partial_sessions
            integrity.empty_sessions += part.empty_sessions
            integrity.invalid_candles += part.invalid_candles
        flags = None
        if quality is not None:
            flags, counts = await check_candles(token, candles, quality, ctx.calendar)
            summary.candle_flags = summary.candle_flags or FlagCounts()
            summary.candle_flags.add(counts)
        with timed(summary, f"rollups:{token}"):
            for tf, n in (await roll_up(candles, options.timeframes, ctx.candles, ctx.calendar)).items():
                summary.rollup_rows[tf] = summary.rollup_rows.get(tf, 0) + n
        base = (
            candles
            if timeframe is Timeframe.M1
            else await ctx.candles.read_frame(token, timeframe, None, None)
        )
        if timeframe is Timeframe.M1:
            summary.feature_rows += (
                await build_features(token, base, calculator, ctx.features, timeframe)
            ).written
        summary.label_rows += (
            await build_labels(
                token,
                base,
                spec,
                ctx.labels,
                timeframe,
                ctx.calendar,
                flags=flags if timeframe is Timeframe.M1 else None,
            )
        ).written
        reporter.update(task, advance=1, info=inst.tradingsymbol)
    summary.integrity = integrity
    for key in [k for k in summary.timings if k.startswith("rollups:")]:
        summary.timings["rollups"] = summary.timings.get("rollups", 0.0) + summary.timings.pop(key)


async def train_step(
    ctx: HistoricalPorts,
    reporter: StepProgress,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
    tracker_factory: Callable[[], ExperimentTracker] | None = None,
) -> TrainOutcome:
    """``train_model`` with one progress bar per training stage."""
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = reporter.task(f"train: {stage}", total)
        reporter.update(tasks[stage], completed=done, total=total)

    return await train_model(
        ctx, start=start, end=end, trials=trials, progress=progress, tracker_factory=tracker_factory
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
) -> OosOutcome:
    """``write_oos_history`` (walk-forward fold models, out-of-sample signals) with progress bars."""
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = reporter.task(f"oos: {stage}", total)
        reporter.update(tasks[stage], completed=done, total=total)

    return await write_oos_history(
        ctx, oos, progress=progress, tracker_factory=tracker_factory, on_trained=on_trained
    )
