"""The application's calendar: exchange_calendars' NSE holidays, configured extras and special sessions."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest
from loguru import logger

from tickwise.adapters.calendar import HolidaySource, load_nse_holidays
from tickwise.bootstrap import calendar as calendar_module
from tickwise.bootstrap.calendar import build_calendar, calendar_of, coverage_gap
from tickwise.config import Settings, load_settings
from tickwise.domain.calendar import NSE_HOLIDAYS
from tickwise.domain.errors import ConfigError

# Published NSE equity-segment trading holidays (NSE circulars for 2025 and 2026).
NSE_2025 = [
    "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18", "2025-05-01",
    "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22", "2025-11-05", "2025-12-25",
]  # fmt: skip
NSE_2026 = [
    "2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03", "2026-04-14",
    "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02", "2026-10-20", "2026-11-10",
    "2026-11-24", "2026-12-25",
]  # fmt: skip


def settings_with(**trading: object) -> Settings:
    return Settings.model_validate({"trading": trading})


def test_the_maintained_calendar_closes_on_every_published_nse_holiday_of_2025_and_2026() -> None:
    cal = build_calendar(Settings())
    for day in map(date.fromisoformat, NSE_2025 + NSE_2026):
        assert not cal.is_trading_day(day), day
    assert cal.is_trading_day(date(2025, 10, 23)) and cal.is_trading_day(date(2026, 1, 16))


def test_the_maintained_calendar_has_no_weekday_holiday_nse_did_not_publish() -> None:
    source = load_nse_holidays()
    weekday = {d for d in source.holidays if d.year in (2025, 2026) and d.weekday() < 5}
    assert weekday == set(map(date.fromisoformat, NSE_2025 + NSE_2026))


def test_the_domain_default_calendar_matches_the_maintained_source_so_they_cannot_drift() -> None:
    source = load_nse_holidays()
    since_2024 = {d for d in source.holidays if date(2024, 1, 1) <= d and d.weekday() < 5}
    assert since_2024 == set(NSE_HOLIDAYS)


def test_configured_extra_holidays_are_kept() -> None:
    cal = build_calendar(settings_with(holidays=["2026-12-30"]))
    assert not cal.is_trading_day(date(2026, 12, 30))
    assert cal.is_trading_day(date(2026, 12, 29))


def test_a_configured_muhurat_session_trades_on_its_own_hours(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "trading:\n  special_sessions:\n"
        '    - {date: 2025-10-21, open: "13:45", close: "14:45", name: Muhurat trading}\n'
    )
    settings = load_settings(config_dir=cfg.parent, environ={})
    cal = build_calendar(settings)
    assert cal.is_trading_day(date(2025, 10, 21))
    assert cal.session_open(date(2025, 10, 21)).time() == time(13, 45)
    assert len(cal.bar_opens(date(2025, 10, 21))) == 60


def test_an_unquoted_yaml_clock_time_is_refused_with_the_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("trading:\n  special_sessions:\n    - {date: 2025-10-21, open: 13:45, close: '14:45'}\n")
    with pytest.raises(ConfigError, match="quoted IST clock time"):
        load_settings(config_dir=cfg.parent, environ={})


def test_an_uncovered_year_gets_one_warning_naming_the_fix() -> None:
    source = HolidaySource(frozenset(), date(2026, 12, 31), "test")
    cal = build_calendar(Settings(), source)
    assert coverage_gap(cal, date(2025, 6, 1)) is None
    gap = coverage_gap(cal, date(2026, 6, 1))
    assert gap is not None and "2027 not covered" in gap and "exchange-calendars" in gap
    later = coverage_gap(cal, date(2027, 3, 1))
    assert later is not None and "2027 and 2028" in later


def test_calendar_of_logs_the_coverage_warning_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    monkeypatch.setattr(calendar_module, "_warned", set())
    try:
        calendar_of(Settings(), today=date(2031, 1, 5))
        calendar_of(Settings(), today=date(2031, 1, 6))
    finally:
        logger.remove(sink)
    assert len(lines) == 1 and "2031 and 2032 not covered" in lines[0]


def test_the_backfill_accepts_and_counts_a_configured_muhurat_session_on_its_own_hours() -> None:
    import numpy as np
    import pandas as pd

    from tickwise.domain.timeframe import Timeframe
    from tickwise.pipelines.historical.backfill import integrity_report, validate_frame

    cal = build_calendar(
        settings_with(special_sessions=[{"date": "2025-10-21", "open": "13:45", "close": "14:45"}])
    )
    bars = cal.bar_opens(date(2025, 10, 21))
    price = np.full(len(bars), 100.0)
    frame = pd.DataFrame(
        {"instrument_token": 408065, "time": pd.DatetimeIndex(bars), "open": price, "high": price,
         "low": price, "close": price, "volume": np.full(len(bars), 10), "oi": 0}
    )  # fmt: skip
    valid, rejected = validate_frame(frame, cal, Timeframe.M1)
    assert rejected == 0 and len(valid) == 60
    report = integrity_report(frame, [408065], date(2025, 10, 21), date(2025, 10, 21), cal)
    assert report.complete_sessions == 1 and not report.partial_sessions
    # A bar outside the Muhurat hour is off the session grid, even though 10:00 is a regular hour.
    stray = frame.assign(time=pd.DatetimeIndex(bars) - pd.Timedelta(hours=3, minutes=45))
    assert validate_frame(stray, cal, Timeframe.M1)[1] == 60
