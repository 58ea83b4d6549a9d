"""NSE trading holidays from the ``exchange_calendars`` package (its XBOM calendar).

``exchange_calendars`` maintains the Indian exchange holidays in its XBOM (BSE) calendar; NSE and BSE
close on the same days for the equity segment (NSE has no calendar of its own there). The package
records the holidays only through a given year (``bound_max``); beyond it every weekday would look
like a session, so that bound travels with the holidays and the application warns when it is near.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tickwise.domain.errors import ConfigError

SOURCE_NAME = "exchange_calendars XBOM"


@dataclass(frozen=True, slots=True)
class HolidaySource:
    """Exchange holidays and the last day the source knows them for."""

    holidays: frozenset[date]
    known_through: date
    source: str


def load_nse_holidays() -> HolidaySource:
    """Read the NSE (XBOM) holidays and their coverage from the installed ``exchange_calendars``."""
    try:
        # The module holds the precomputed list; building a full ExchangeCalendar would compute
        # every session since 1997 for nothing.
        from exchange_calendars import __version__ as version
        from exchange_calendars.exchange_calendar_xbom import XBOMExchangeCalendar, precomputed_bse_holidays
    except ImportError as exc:  # pragma: no cover - a broken install, not a code path
        raise ConfigError(
            f"the NSE holiday calendar needs the exchange_calendars package ({exc}); "
            "run `.venv/bin/pip install exchange-calendars`"
        ) from None
    holidays = frozenset(ts.date() for ts in precomputed_bse_holidays)
    known_through = XBOMExchangeCalendar.bound_max().date()
    return HolidaySource(holidays, known_through, f"{SOURCE_NAME} {version}")
