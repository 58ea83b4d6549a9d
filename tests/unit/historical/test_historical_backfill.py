"""Backfill manager: gap detection on the session calendar, idempotent re-runs, OHLC validation."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from fakes import FakeHistoricalSource, InMemoryBackfillLogRepository, InMemoryCandleRepository
from tickwise.domain.calendar import NSE
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.historical.backfill import (
    BackfillManager,
    integrity_report,
    last_completed_session,
    plan_ranges,
    session_range,
    validate_frame,
)

INFY = Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1)


def _day_frame(day: date, skip: int = 0) -> pd.DataFrame:
    times = NSE.bar_opens(day)[skip:]
    n = len(times)
    close = np.full(n, 100.0)
    return pd.DataFrame(
        {
            "time": pd.DatetimeIndex(times),
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close,
            "volume": np.full(n, 10),
            "oi": 0,
        }
    )


def _session_frames(token: int, start: datetime, end: datetime) -> pd.DataFrame:
    return pd.concat([_day_frame(d) for d in NSE.trading_days(start.date(), end.date())], ignore_index=True)


def test_missing_days_are_grouped_into_runs_of_consecutive_trading_days() -> None:
    days = NSE.trading_days(date(2026, 1, 5), date(2026, 1, 16))
    done = {days[2], days[3], days[7]}
    runs = plan_ranges(days, done)
    assert runs == [tuple(days[0:2]), tuple(days[4:7]), tuple(days[8:])]


def test_last_completed_session_is_today_only_after_the_close() -> None:
    assert last_completed_session(datetime(2026, 1, 7, 15, 29, tzinfo=IST)) == date(2026, 1, 6)
    assert last_completed_session(datetime(2026, 1, 7, 15, 30, tzinfo=IST)) == date(2026, 1, 7)
    assert last_completed_session(datetime(2026, 1, 10, 12, 0, tzinfo=IST)) == date(2026, 1, 9)  # Saturday
    first, last = session_range(date(2026, 1, 9), 5)
    assert (first, last) == (date(2026, 1, 5), date(2026, 1, 9))


async def test_a_second_backfill_fetches_nothing_and_a_gap_is_fetched_alone() -> None:
    source = FakeHistoricalSource(_session_frames)
    candles, log = InMemoryCandleRepository(), InMemoryBackfillLogRepository()
    hooks = RecordingHooks()
    manager = BackfillManager(source, candles, log, hooks=hooks)
    first = await manager.run([INFY], date(2026, 1, 5), date(2026, 1, 9))
    assert first.fetched_days == 5 and first.rows_written == 5 * 375 and len(source.calls) == 1
    assert hooks.of("on_backfilled") == [("1m", 5 * 375)]  # tickwise_backfilled_candles_total
    again = await manager.run([INFY], date(2026, 1, 5), date(2026, 1, 9))
    assert again.fetched_days == 0 and again.already_stored == 5 and len(source.calls) == 1
    del log.days[(INFY.instrument_token, "1m", date(2026, 1, 7))]
    gap = await manager.run([INFY], date(2026, 1, 5), date(2026, 1, 9))
    assert gap.fetched_days == 1 and gap.rows_written == 0  # the stored candles are kept, not duplicated
    token, start, end = source.calls[-1]
    assert token == INFY.instrument_token
    assert start == datetime(2026, 1, 7, 9, 15, tzinfo=IST)
    assert end == datetime(2026, 1, 7, 15, 30, tzinfo=IST) - timedelta(seconds=1)


def test_invalid_ohlc_and_off_grid_candles_are_rejected() -> None:
    frame = _day_frame(date(2026, 1, 5)).head(4).copy()
    frame.loc[1, "high"] = 99.0  # high below close
    frame.loc[2, "time"] = frame.loc[2, "time"] + pd.Timedelta(seconds=30)
    valid, rejected = validate_frame(frame, NSE, Timeframe.M1)
    assert rejected == 2 and len(valid) == 2


def test_integrity_report_counts_complete_partial_and_empty_sessions() -> None:
    frame = pd.concat(
        [_day_frame(date(2026, 1, 5)), _day_frame(date(2026, 1, 6), skip=10)], ignore_index=True
    )
    frame["instrument_token"] = INFY.instrument_token
    report = integrity_report(frame, [INFY.instrument_token], date(2026, 1, 5), date(2026, 1, 7))
    assert report.sessions == 3 and report.complete_sessions == 1
    assert report.partial_sessions == [(INFY.instrument_token, date(2026, 1, 6), 365)]
    assert report.empty_sessions == [(INFY.instrument_token, date(2026, 1, 7))]
    assert report.ok
