"""The historical mode end to end: sync, backfill, roll up, features, labels, train, predict.

Every step is idempotent and resumable: re-running after a kill (or after success) continues where the
data stands (backfill_log for candles, newest stored row for features and labels, the deterministic
model version for training, upserts for signals).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tickwise.config import Settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.backfill import (
    BackfillManager,
    BackfillReport,
    IntegrityReport,
    integrity_report,
    last_completed_session,
    session_range,
)
from tickwise.pipelines.historical.build_features import build_features
from tickwise.pipelines.historical.build_labels import build_labels
from tickwise.pipelines.historical.predict import PredictOutcome, predict_signals
from tickwise.pipelines.historical.rollups import roll_up
from tickwise.pipelines.historical.train import TrainOutcome, label_spec_of, train_model
from tickwise.pipelines.historical.universe import select_universe


@dataclass
class HistoricalSummary:
    instruments: int = 0
    first_day: date | None = None
    last_day: date | None = None
    backfill: BackfillReport | None = None
    integrity: IntegrityReport | None = None
    rollup_rows: dict[str, int] = field(default_factory=dict)
    feature_rows: int = 0
    label_rows: int = 0
    train: TrainOutcome | None = None
    predict: PredictOutcome | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Reporter:
    """Rich progress bars (one per step) on ``console``."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )

    def __enter__(self) -> Reporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def task(self, description: str, total: float | None) -> Any:
        return self.progress.add_task(description, total=total, info="")

    def update(self, task: Any, **kwargs: Any) -> None:
        self.progress.update(task, **kwargs)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)


@contextmanager
def _timed(summary: HistoricalSummary, name: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        summary.timings[name] = round(time.perf_counter() - began, 2)


async def sync_and_backfill(
    ctx: Any,
    settings: Settings,
    reporter: Reporter,
    summary: HistoricalSummary,
    *,
    first: date | None = None,
    last: date | None = None,
    symbols: Sequence[str] = (),
    timeframe: Timeframe = Timeframe.M1,
    sync: bool = True,
) -> list[Instrument]:
    """Open the broker (simulator without credentials), sync instruments, backfill the missing days."""
    from tickwise.bootstrap.broker import open_broker
    from tickwise.pipelines.historical.instruments import InstrumentManager

    async with open_broker(settings) as broker:
        now = broker.now()
        if sync:
            with _timed(summary, "sync"):
                task = reporter.task("instruments sync", 1)
                result = await InstrumentManager(
                    broker.rest, ctx.instruments, today=lambda: now.date()
                ).sync()
                reporter.update(task, completed=1, info=f"{result.total} active")
        universe = await select_universe(ctx.instruments, symbols or settings.trading.symbols)
        last_day = last or last_completed_session(now, ctx.calendar)
        first_day = first or session_range(last_day, settings.trading.backfill_days, ctx.calendar)[0]
        summary.instruments, summary.first_day, summary.last_day = len(universe), first_day, last_day
        with _timed(summary, "backfill"):
            task = reporter.task(f"backfill {timeframe}", None)
            manager = BackfillManager(
                broker.rest, ctx.candles, ctx.backfill_log, calendar=ctx.calendar, timeframe=timeframe
            )
            rows = [0]

            def on_plan(n: int) -> None:
                reporter.update(
                    task, total=max(n, 1), completed=0 if n else 1, info="nothing missing" if not n else ""
                )

            def on_done(t: Any, n: int) -> None:
                rows[0] += n
                reporter.update(task, advance=1, info=f"{rows[0]:,} candles")

            summary.backfill = await manager.run(
                universe, first_day, last_day, on_plan=on_plan, on_done=on_done
            )
    return universe


async def derive(
    ctx: Any,
    settings: Settings,
    universe: Sequence[Instrument],
    reporter: Reporter,
    summary: HistoricalSummary,
) -> None:
    """Integrity check, roll-ups, features and labels per instrument (1m = the signal timeframe)."""
    timeframe = settings.trading.signal_timeframe
    calculator = FeatureCalculator()
    spec = label_spec_of(settings)
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
        with _timed(summary, f"rollups:{token}"):
            for tf, n in (
                await roll_up(candles, settings.trading.timeframes, ctx.candles, ctx.calendar)
            ).items():
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
            await build_labels(token, base, spec, ctx.labels, timeframe, ctx.calendar)
        ).written
        reporter.update(task, advance=1, info=inst.tradingsymbol)
    summary.integrity = integrity
    for key in [k for k in summary.timings if k.startswith("rollups:")]:
        summary.timings["rollups"] = summary.timings.get("rollups", 0.0) + summary.timings.pop(key)


def tracker_factory(settings: Settings) -> Any:
    from tickwise.adapters.mlflow.tracker import MlflowTracker, tracking_uri

    return lambda: MlflowTracker(tracking_uri(settings))


async def train_step(
    ctx: Any,
    settings: Settings,
    reporter: Reporter,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
) -> TrainOutcome:
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = reporter.task(f"train: {stage}", total)
        reporter.update(tasks[stage], completed=done, total=total)

    return await train_model(
        ctx, start=start, end=end, trials=trials, progress=progress, tracker_factory=tracker_factory(settings)
    )


async def predict_step(
    ctx: Any,
    reporter: Reporter,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    version: str | None = None,
) -> PredictOutcome:
    task = reporter.task("predict (historical)", None)

    def progress(done: int, total: int) -> None:
        reporter.update(task, completed=done, total=total)

    return await predict_signals(ctx, start=start, end=end, version=version, progress=progress)


async def run_historical(
    settings: Settings, reporter: Reporter, *, url: str | None = None
) -> HistoricalSummary:
    """``tickwise historical``: every step, in order (see the module doc)."""
    from tickwise.bootstrap.historical import open_historical

    summary = HistoricalSummary()
    began = time.perf_counter()
    async with open_historical(settings, url=url) as ctx:
        universe = await sync_and_backfill(ctx, settings, reporter, summary)
        with _timed(summary, "derive"):
            await derive(ctx, settings, universe, reporter, summary)
        with _timed(summary, "train"):
            summary.train = await train_step(ctx, settings, reporter)
        with _timed(summary, "predict"):
            summary.predict = await predict_step(ctx, reporter, version=summary.train.model_version)
    summary.timings["total"] = round(time.perf_counter() - began, 2)
    return summary
