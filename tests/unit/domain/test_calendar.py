from datetime import date, datetime

from tickwise.domain.calendar import NSE, SessionCalendar
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
