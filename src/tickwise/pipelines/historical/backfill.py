"""Backfill manager: gap-aware, parallel, rate-limited, idempotent candle backfill from Kite.

Gap detection works on the NSE session calendar: for every instrument, the trading days in the
requested range that are not recorded in ``backfill_log`` are missing. Consecutive missing trading
days are fetched as one range (the REST client splits long ranges into Kite-sized chunks and respects
the historical API rate limit), several instruments in parallel. Each fetched day is recorded in
``backfill_log`` *after* its candles are committed, so a killed run re-fetches at most the ranges that
were in flight, and a second run fetches nothing already stored.

A day that the broker returns with fewer than the session's bars (illiquid minutes, no trades) is still
recorded as fetched, with its row count; :func:`integrity_report` lists such sessions and any candle
violating OHLC validity (``low <= open, close <= high``, non-negative volume, on the session grid).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.ports.historical_source import HistoricalSource
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.repositories import BackfillLogRepository, CandleRepository


@dataclass(frozen=True, slots=True)
class FetchTask:
    instrument: Instrument
    first_day: date
    last_day: date
    days: tuple[date, ...]


@dataclass
class BackfillReport:
    requested_days: int = 0  # instrument-days in the range
    already_stored: int = 0  # instrument-days skipped (in backfill_log)
    fetched_days: int = 0
    fetch_ranges: int = 0
    rows_received: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    failures: list[str] = field(default_factory=list)


def last_completed_session(now: datetime, calendar: SessionCalendar = NSE) -> date:
    """The newest trading day whose session has closed at ``now``."""
    local = now.astimezone(IST)
    day = local.date()
    if calendar.is_trading_day(day) and local >= calendar.session_close(day):
        return day
    return calendar.previous_trading_day(day)


def session_range(last_day: date, n_days: int, calendar: SessionCalendar = NSE) -> tuple[date, date]:
    """First and last day of the ``n_days`` trading days ending at ``last_day`` (a trading day)."""
    day = last_day if calendar.is_trading_day(last_day) else calendar.previous_trading_day(last_day)
    last = day
    for _ in range(n_days - 1):
        day = calendar.previous_trading_day(day)
    return day, last


def plan_ranges(trading_days: Sequence[date], done: set[date]) -> list[tuple[date, ...]]:
    """Group the trading days not in ``done`` into runs of consecutive trading days."""
    runs: list[list[date]] = []
    previous_missing = False
    for day in trading_days:
        if day in done:
            previous_missing = False
            continue
        if previous_missing:
            runs[-1].append(day)
        else:
            runs.append([day])
        previous_missing = True
    return [tuple(run) for run in runs]


def validate_frame(
    frame: pd.DataFrame, calendar: SessionCalendar, timeframe: Timeframe
) -> tuple[pd.DataFrame, int]:
    """Drop candles that are not valid OHLC or not on the session grid; return (valid rows, rejected count)."""
    if frame.empty:
        return frame, 0
    o, h, low, c = (frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    ok = np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c)
    ok &= (low <= np.minimum(o, c)) & (h >= np.maximum(o, c)) & (low > 0)
    ok &= frame["volume"].to_numpy(dtype=np.float64) >= 0
    if timeframe is not Timeframe.D1:
        local = pd.DatetimeIndex(frame["time"]).tz_convert(IST)
        minutes = local.hour * 60 + local.minute - (calendar.open_time.hour * 60 + calendar.open_time.minute)
        ok &= (minutes >= 0) & (minutes < calendar.session_minutes) & (minutes % timeframe.minutes == 0)
        ok &= local.second == 0
        ok &= np.array([calendar.is_trading_day(d) for d in local.date], dtype=bool)
    return frame[ok], int((~ok).sum())


class BackfillManager:
    """Fetch the missing trading days of each instrument and store them (see the module doc)."""

    def __init__(
        self,
        source: HistoricalSource,
        candles: CandleRepository,
        log: BackfillLogRepository,
        *,
        calendar: SessionCalendar = NSE,
        timeframe: Timeframe = Timeframe.M1,
        concurrency: int = 3,
        hooks: PipelineHooks | None = None,
    ) -> None:
        self.source = source
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self.candles = candles
        self.log = log
        self.calendar = calendar
        self.timeframe = timeframe
        self.concurrency = max(1, concurrency)

    async def plan(
        self, instruments: Sequence[Instrument], first_day: date, last_day: date, report: BackfillReport
    ) -> list[FetchTask]:
        trading_days = self.calendar.trading_days(first_day, last_day)
        tasks = []
        for inst in instruments:
            done = await self.log.done_days(inst.instrument_token, self.timeframe, first_day, last_day)
            report.requested_days += len(trading_days)
            report.already_stored += sum(1 for d in trading_days if d in done)
            for run in plan_ranges(trading_days, done):
                tasks.append(FetchTask(inst, run[0], run[-1], run))
        return tasks

    async def run(
        self,
        instruments: Sequence[Instrument],
        first_day: date,
        last_day: date,
        *,
        on_plan: Callable[[int], None] | None = None,
        on_done: Callable[[FetchTask, int], None] | None = None,
    ) -> BackfillReport:
        """Backfill ``[first_day, last_day]`` for ``instruments``; ``on_plan(n_tasks)`` and
        ``on_done(task, rows)`` drive a progress display."""
        report = BackfillReport()
        tasks = await self.plan(instruments, first_day, last_day, report)
        report.fetch_ranges = len(tasks)
        if on_plan is not None:
            on_plan(len(tasks))
        semaphore = asyncio.Semaphore(self.concurrency)

        async def worker(task: FetchTask) -> None:
            async with semaphore:
                rows = await self._fetch(task, report)
            if on_done is not None:
                on_done(task, rows)

        await asyncio.gather(*(worker(t) for t in tasks))
        return report

    async def _fetch(self, task: FetchTask, report: BackfillReport) -> int:
        token = task.instrument.instrument_token
        start = self.calendar.session_open(task.first_day)
        end = self.calendar.session_close(task.last_day) - timedelta(seconds=1)
        frame = await self.source.historical_frame(token, self.timeframe, start, end)
        report.rows_received += len(frame)
        if not frame.empty:
            frame = frame.copy()
            frame["instrument_token"] = token
            frame["timeframe"] = str(self.timeframe)
            frame["source"] = "historical"
        frame, rejected = validate_frame(frame, self.calendar, self.timeframe)
        report.rows_rejected += rejected
        written = await self.candles.add_frame(frame, on_conflict="nothing") if len(frame) else 0
        report.rows_written += written
        self.hooks.on_backfilled(str(self.timeframe), written)
        per_day = (
            pd.DatetimeIndex(frame["time"]).tz_convert(IST).date if len(frame) else np.array([], dtype=object)
        )
        counts = pd.Series(per_day).value_counts().to_dict() if len(frame) else {}
        for day in task.days:
            await self.log.record(token, self.timeframe, day, int(counts.get(day, 0)))
        report.fetched_days += len(task.days)
        return len(frame)


@dataclass
class IntegrityReport:
    sessions: int = 0
    complete_sessions: int = 0
    partial_sessions: list[tuple[int, date, int]] = field(default_factory=list)  # token, day, rows
    empty_sessions: list[tuple[int, date]] = field(default_factory=list)
    invalid_candles: int = 0

    @property
    def ok(self) -> bool:
        return self.invalid_candles == 0


def integrity_report(
    candles: pd.DataFrame,
    tokens: Sequence[int],
    first_day: date,
    last_day: date,
    calendar: SessionCalendar = NSE,
    timeframe: Timeframe = Timeframe.M1,
) -> IntegrityReport:
    """Counts per session against the calendar and OHLC validity of stored candles."""
    report = IntegrityReport()
    expected = calendar.bars_per_session(timeframe)
    days = calendar.trading_days(first_day, last_day)
    _, invalid = validate_frame(candles, calendar, timeframe)
    report.invalid_candles = invalid
    if candles.empty:
        counts: dict[tuple[int, date], int] = {}
    else:
        local_days = pd.DatetimeIndex(candles["time"]).tz_convert(IST).date
        counts = (
            pd.DataFrame({"t": candles["instrument_token"].to_numpy(), "d": local_days})
            .groupby(["t", "d"])
            .size()
            .to_dict()
        )
    for token in tokens:
        for day in days:
            n = int(counts.get((int(token), day), 0))
            report.sessions += 1
            if n >= expected:
                report.complete_sessions += 1
            elif n == 0:
                report.empty_sessions.append((int(token), day))
            else:
                report.partial_sessions.append((int(token), day, n))
    return report
