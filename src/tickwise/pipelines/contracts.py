"""Which futures contract the continuous series takes on a day, with the volumes the rule needs.

Shared by both modes (historical builds the series day by day, live asks once at session start), so
the roll they apply is the same function: :func:`tickwise.core.futures.front_contract`, fed with the
previous session's volume of each contract the volume rule compares (``trading.futures_roll: volume``),
fetched through the broker's REST candles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date

import pandas as pd

from tickwise.core.futures import DEFAULT_RULE, RollRule, front_contract, volume_candidates
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.errors import BrokerError
from tickwise.domain.instrument import Instrument

# One contract's 1-minute candles of one session (the ``candles`` table's columns).
DayFetch = Callable[[int, date], Awaitable[pd.DataFrame]]


async def previous_volumes(
    contracts: Sequence[Instrument],
    day: date,
    rule: RollRule,
    calendar: SessionCalendar,
    fetch: DayFetch,
) -> dict[int, int] | None:
    """Volume on the session before ``day`` of each contract the volume rule compares (None by date).

    A contract whose candles cannot be fetched counts as 0: it cannot take over on volume it did not
    show, so the rule falls back to the date rule for it.
    """
    candidates = volume_candidates(contracts, day, rule, calendar)
    if not candidates:
        return None
    previous = calendar.previous_trading_day(day)
    out: dict[int, int] = {}
    for c in candidates:
        try:
            frame = await fetch(c.instrument_token, previous)
        except BrokerError:
            frame = pd.DataFrame()
        out[c.instrument_token] = int(frame["volume"].sum()) if len(frame) else 0
    return out


async def front_on(
    contracts: Sequence[Instrument],
    day: date,
    fetch: DayFetch,
    rule: RollRule = DEFAULT_RULE,
    calendar: SessionCalendar = NSE,
    held: Instrument | None = None,
) -> Instrument:
    """The front contract on ``day`` under ``rule`` (``NoLiveContract`` if none): the date rule, or the
    volume rule with the previous session's volumes fetched through ``fetch``."""
    volumes = await previous_volumes(contracts, day, rule, calendar, fetch)
    return front_contract(contracts, day, rule, calendar, volumes, held)
