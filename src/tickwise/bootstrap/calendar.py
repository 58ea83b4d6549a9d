"""The session calendar the application runs on: maintained NSE holidays + configuration.

Holidays come from ``exchange_calendars`` (``adapters.calendar``); ``trading.holidays`` adds days the
package does not list yet, and ``trading.special_sessions`` adds sessions on their own hours (Muhurat
trading, a Saturday session). When the package does not know the holidays of the current or the next
year, one warning is logged (and ``tickwise status`` shows it): until it is upgraded, every weekday of
that year counts as a session unless listed in ``trading.holidays``.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from loguru import logger

from tickwise.adapters.calendar import HolidaySource, load_nse_holidays
from tickwise.config import Settings
from tickwise.domain.calendar import SessionCalendar, SpecialSession
from tickwise.domain.time import IST


@lru_cache(maxsize=1)
def _holidays() -> HolidaySource:
    return load_nse_holidays()


_warned: set[int] = set()


def build_calendar(settings: Settings, source: HolidaySource | None = None) -> SessionCalendar:
    """The SessionCalendar of ``settings`` (holidays from ``source``, default the installed package)."""
    src = source or _holidays()
    trading = settings.trading
    return SessionCalendar(
        holidays=src.holidays | frozenset(trading.holidays),
        special_sessions=[SpecialSession(s.date, s.open, s.close, s.name) for s in trading.special_sessions],
        known_through=src.known_through,
    )


def coverage_gap(calendar: SessionCalendar, today: date) -> str | None:
    """A one-line warning when the holidays of this year or the next are not known, else None."""
    if calendar.known_through is None:
        return None
    missing = [y for y in (today.year, today.year + 1) if not calendar.covers(date(y, 12, 31))]
    if not missing:
        return None
    years = " and ".join(str(y) for y in missing)
    return (
        f"the NSE holiday calendar is known only through {calendar.known_through}: {years} not covered "
        "(every weekday counts as a session); upgrade exchange-calendars "
        "(`.venv/bin/pip install -U exchange-calendars`) or list the holidays in trading.holidays"
    )


def calendar_of(settings: Settings, today: date | None = None) -> SessionCalendar:
    """``build_calendar`` plus the coverage warning, logged once per process and year."""
    calendar = build_calendar(settings)
    day = today or datetime.now(IST).date()
    gap = coverage_gap(calendar, day)
    if gap and day.year not in _warned:
        _warned.add(day.year)
        logger.warning(gap)
    return calendar
