"""`tickwise status`: next year's missing holidays are a notice, this year's are something to fix."""

from __future__ import annotations

from datetime import date, datetime

from tickwise.bootstrap.calendar import build_calendar
from tickwise.bootstrap.status import _calendar
from tickwise.config import load_settings
from tickwise.domain.time import IST


def last_known_year() -> int:
    known = build_calendar(load_settings(environ={})).known_through
    assert isinstance(known, date)
    return known.year


def test_next_years_missing_holidays_are_reported_without_counting_as_an_action() -> None:
    year = last_known_year()
    december = _calendar(load_settings(environ={}), datetime(year, 12, 5, 10, 0, tzinfo=IST))
    assert december["warning"] is not None and str(year + 1) in december["warning"]
    assert december["this_year_covered"] is True


def test_this_years_missing_holidays_need_action() -> None:
    year = last_known_year() + 1
    january = _calendar(load_settings(environ={}), datetime(year, 1, 4, 10, 0, tzinfo=IST))
    assert january["warning"] is not None
    assert january["this_year_covered"] is False
