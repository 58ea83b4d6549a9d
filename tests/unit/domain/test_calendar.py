from datetime import date, datetime, time

import pytest

from tickwise.domain.calendar import NSE, SessionCalendar, SpecialSession
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe


def test_a_regular_session_has_375_one_minute_bars_from_0915_to_1529() -> None:
    bars = NSE.bar_opens(date(2025, 1, 6))
    assert len(bars) == 375
    assert bars[0] == datetime(2025, 1, 6, 9, 15, tzinfo=IST)
    assert bars[-1] == datetime(2025, 1, 6, 15, 29, tzinfo=IST)


def test_weekends_and_exchange_holidays_have_no_bars() -> None:
    assert NSE.bar_opens(date(2025, 1, 4)) == []  # Saturday
    assert not NSE.is_trading_day(date(2025, 12, 25))
    assert NSE.next_trading_day(date(2025, 12, 24)) == date(2025, 12, 26)


def test_sixty_minute_bars_are_aligned_to_0915_and_the_last_one_is_partial() -> None:
    bars = NSE.bar_opens(date(2025, 1, 6), Timeframe.M60)
    assert [b.strftime("%H:%M") for b in bars] == [
        "09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15",
    ]  # fmt: skip
    assert NSE.bars_per_session(Timeframe.M60) == 7


def test_bar_open_finds_the_session_aligned_bucket_of_an_instant() -> None:
    instant = datetime(2025, 1, 6, 10, 7, 30, tzinfo=IST)
    assert NSE.bar_open(instant, Timeframe.M15) == datetime(2025, 1, 6, 10, 0, tzinfo=IST)
    assert NSE.bar_open(instant, Timeframe.M5) == datetime(2025, 1, 6, 10, 5, tzinfo=IST)
    assert NSE.bar_open(instant, Timeframe.M60) == datetime(2025, 1, 6, 9, 15, tzinfo=IST)


def test_is_open_excludes_the_close_instant_and_pre_open() -> None:
    assert NSE.is_open(datetime(2025, 1, 6, 9, 15, tzinfo=IST))
    assert not NSE.is_open(datetime(2025, 1, 6, 9, 8, tzinfo=IST))
    assert not NSE.is_open(datetime(2025, 1, 6, 15, 30, tzinfo=IST))


def test_a_calendar_with_extra_holidays_skips_them() -> None:
    cal = SessionCalendar(holidays={date(2025, 1, 7)})
    assert cal.trading_days(date(2025, 1, 6), date(2025, 1, 8)) == [date(2025, 1, 6), date(2025, 1, 8)]


MUHURAT = SpecialSession(date(2025, 10, 21), time(13, 45), time(14, 45), "Muhurat trading")
SATURDAY = SpecialSession(date(2025, 2, 1), time(9, 15), time(15, 30), "Union Budget session")


def test_a_muhurat_session_trades_on_a_holiday_on_its_own_hours() -> None:
    cal = SessionCalendar(special_sessions=[MUHURAT])
    assert not NSE.is_trading_day(MUHURAT.day)  # Diwali is an exchange holiday...
    assert cal.is_trading_day(MUHURAT.day)  # ...with a one-hour evening-style session
    bars = cal.bar_opens(MUHURAT.day)
    assert len(bars) == 60 == cal.bars_per_session(Timeframe.M1, MUHURAT.day)
    assert bars[0] == datetime(2025, 10, 21, 13, 45, tzinfo=IST)
    assert cal.session_close(MUHURAT.day) == datetime(2025, 10, 21, 14, 45, tzinfo=IST)
    assert cal.is_open(datetime(2025, 10, 21, 14, 0, tzinfo=IST))
    assert not cal.is_open(datetime(2025, 10, 21, 10, 0, tzinfo=IST))
    assert cal.bar_open(datetime(2025, 10, 21, 14, 7, tzinfo=IST), Timeframe.M15) == datetime(
        2025, 10, 21, 14, 0, tzinfo=IST
    )


def test_a_configured_saturday_session_is_a_trading_day_between_friday_and_monday() -> None:
    cal = SessionCalendar(special_sessions=[SATURDAY])
    assert cal.next_trading_day(date(2025, 1, 31)) == date(2025, 2, 1)
    assert cal.previous_trading_day(date(2025, 2, 3)) == date(2025, 2, 1)
    assert len(cal.bar_opens(SATURDAY.day)) == 375
    assert NSE.next_trading_day(date(2025, 1, 31)) == date(2025, 2, 3)


def test_a_special_session_must_close_after_it_opens() -> None:
    with pytest.raises(ValueError, match="not after open"):
        SpecialSession(date(2025, 10, 21), time(14, 45), time(13, 45))


def test_coverage_ends_where_the_holiday_list_ends() -> None:
    assert NSE.covers(date(2026, 12, 31))
    assert not NSE.covers(date(2027, 1, 1))
    assert SessionCalendar(holidays=[]).covers(date(2099, 1, 1))  # a hand-made calendar claims nothing
