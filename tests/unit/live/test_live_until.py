"""`tickwise live --until`: IST clock times and market-time durations, capped at the session close."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST
from tickwise.pipelines.live.until import parse_until

DAY = date(2025, 1, 7)


def at(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2025, 1, 7, h, m, s, tzinfo=IST)


def test_no_until_means_the_session_close() -> None:
    assert parse_until(None, DAY, at(9, 14, 50)) == at(15, 30)


def test_a_clock_time_is_that_ist_time_of_the_session_day() -> None:
    assert parse_until("10:30", DAY, at(9, 14, 50)) == at(10, 30)
    assert parse_until("10:30:15", DAY, at(9, 14, 50)) == at(10, 30, 15)


def test_a_duration_counts_market_time_from_the_open_or_the_later_start() -> None:
    assert parse_until("+45m", DAY, at(9, 14, 50)) == at(10, 0)
    assert parse_until("+1h30m", DAY, at(11, 0)) == at(12, 30)
    assert parse_until("+90s", DAY, at(11, 0)) == at(11, 1, 30)
    assert parse_until("+20", DAY, at(11, 0)) == at(11, 20)


def test_until_never_runs_past_the_session_close() -> None:
    assert parse_until("+8h", DAY, at(9, 14, 50)) == at(15, 30)
    assert parse_until("18:00", DAY, at(9, 14, 50)) == at(15, 30)


@pytest.mark.parametrize("bad", ["soon", "25:00", "10:61", "+", "+0m", "+5x", "10.30"])
def test_malformed_values_are_configuration_errors_naming_the_forms(bad: str) -> None:
    with pytest.raises(ConfigError, match="until"):
        parse_until(bad, DAY, at(9, 14, 50))


def test_a_clock_time_before_the_start_is_refused() -> None:
    with pytest.raises(ConfigError, match="not after"):
        parse_until("10:00", DAY, at(11, 0))
