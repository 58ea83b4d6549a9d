"""The continuous front-month series of an index future, stitched and back-adjusted (docs/futures.md).

For every trading day the front contract (``pipelines.contracts.front_on``: the configured roll rule,
by date or by volume, the same function the live mode asks at session start) supplies that day's
1-minute candles, fetched with the contract's own token. At each roll the older part of the series
is **back-adjusted by the roll gap**: ``gap = close(new contract) - close(old contract)`` at the
last minute of the last session the old contract was held, added to every earlier price (open, high,
low, close; volumes stay raw). The newest segment is therefore the tradable price of the current
contract, and the series has no jump at a roll beyond what both contracts did in that minute.

Coverage is honest: a day is built only when its front contract is known (from the instrument
master) and its candles can be fetched. Days before ``earliest expiry - 25 days`` are not covered,
because an older contract tickwise never saw may have been the front then; such days and days
whose fetch fails are counted in the report, never filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from tickwise.core.futures import (
    DEFAULT_RULE,
    RollRule,
    continuous_symbol,
    continuous_token,
    futures_of,
    roll_gap,
    shift_prices,
)
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.errors import BrokerError
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.contracts import DayFetch, front_on
from tickwise.ports.historical_source import HistoricalSource
from tickwise.ports.repositories import CandleRepository, InstrumentRepository

# Consecutive monthly expiries are 28 or 35 days apart, a holiday shift takes a day or two off.
PREDECESSOR_MARGIN = timedelta(days=25)


def memoized(fetch: DayFetch) -> DayFetch:
    """``fetch`` asked once per (token, day): the volume rule and the roll gap re-read the same days."""
    seen: dict[tuple[int, date], pd.DataFrame] = {}

    async def cached(token: int, day: date) -> pd.DataFrame:
        key = (token, day)
        if key not in seen:
            seen[key] = await fetch(token, day)
        return seen[key]

    return cached


@dataclass(frozen=True, slots=True)
class Roll:
    """One switch of the series: the last day of ``old``, the gap added to everything before it."""

    last_old_day: date
    old_token: int
    new_token: int
    gap: float


@dataclass(slots=True)
class ContinuousReport:
    underlying: str
    token: int
    days_built: int = 0
    uncovered_days: list[date] = field(default_factory=list)
    failed_days: list[date] = field(default_factory=list)
    rolls: list[Roll] = field(default_factory=list)


async def build_continuous(
    underlying: str,
    contracts: Sequence[Instrument],
    days: Sequence[date],
    fetch: DayFetch,
    rule: RollRule = DEFAULT_RULE,
    calendar: SessionCalendar = NSE,
) -> tuple[pd.DataFrame, ContinuousReport]:
    """The back-adjusted continuous 1-minute series of ``underlying`` over ``days`` and its report.

    ``fetch(token, day)`` returns that contract's 1-minute candle frame for the day (the ``candles``
    table's columns). The result carries ``continuous_token(underlying)`` in ``instrument_token``.
    """
    token = continuous_token(underlying)
    report = ContinuousReport(underlying, token)
    fetch = memoized(fetch)
    known = [c for c in contracts if c.expiry is not None]
    if not known:
        report.uncovered_days = list(days)
        return pd.DataFrame(), report
    earliest = min(c.expiry for c in known if c.expiry is not None)
    covered_from = earliest - PREDECESSOR_MARGIN
    parts: list[tuple[date, int, pd.DataFrame]] = []
    held: Instrument | None = None
    for day in sorted(days):
        if day < covered_from:
            report.uncovered_days.append(day)
            continue
        try:
            front = await front_on(known, day, fetch, rule, calendar, held)
        except LookupError:
            report.uncovered_days.append(day)
            continue
        held = front
        try:
            frame = await fetch(front.instrument_token, day)
        except BrokerError:
            report.failed_days.append(day)
            continue
        if frame.empty:
            report.failed_days.append(day)
            continue
        parts.append((day, front.instrument_token, frame.sort_values("time").reset_index(drop=True)))
    if not parts:
        return pd.DataFrame(), report
    # Walk back from the newest day, accumulating the roll gaps.
    offset = 0.0
    adjusted: list[pd.DataFrame] = []
    for i in range(len(parts) - 1, -1, -1):
        day, contract, frame = parts[i]
        if i < len(parts) - 1 and parts[i + 1][1] != contract:
            new_token = parts[i + 1][1]
            gap = await _roll_gap(fetch, new_token, day, frame)
            report.rolls.append(Roll(day, contract, new_token, gap))
            offset += gap
        out = shift_prices(frame, offset)
        out["instrument_token"] = token
        adjusted.append(out)
    report.days_built = len(parts)
    report.rolls.reverse()
    series = pd.concat(adjusted[::-1], ignore_index=True)
    return series, report


async def _roll_gap(fetch: DayFetch, new_token: int, day: date, old: pd.DataFrame) -> float:
    """``core.futures.roll_gap`` of the old contract's ``day`` and the new contract's same session
    (0.0, shown in the report as a zero gap, when the new contract's candles cannot be fetched)."""
    try:
        new = await fetch(new_token, day)
    except BrokerError:
        return 0.0
    return roll_gap(old, new)


def continuous_instrument(underlying: str, front: Instrument) -> Instrument:
    """The synthetic instrument the continuous series is stored under (lot size of the front contract)."""
    return Instrument(
        instrument_token=continuous_token(underlying),
        exchange_token=continuous_token(underlying) >> 8,
        tradingsymbol=continuous_symbol(underlying),
        name=underlying.upper(),
        exchange=front.exchange,
        segment=front.segment,
        instrument_type="FUT",
        tick_size=front.tick_size,
        lot_size=front.lot_size,
        expiry=None,
    )


async def backfill_continuous(
    underlyings: Sequence[str],
    instruments: InstrumentRepository,
    candles: CandleRepository,
    source: HistoricalSource,
    first_day: date,
    last_day: date,
    rule: RollRule = DEFAULT_RULE,
    calendar: SessionCalendar = NSE,
) -> tuple[list[Instrument], list[ContinuousReport]]:
    """Build and store each underlying's continuous 1m series over ``[first_day, last_day]``.

    Rebuilt in full on every run (``on_conflict="update"``), since a new roll shifts every older
    price by its gap. Returns the synthetic instruments (to join the run's universe) and the reports.
    An underlying without any known futures contract is reported with every day uncovered.
    """
    known = await instruments.all(active_only=False)
    days = calendar.trading_days(first_day, last_day)

    async def fetch(token: int, day: date) -> pd.DataFrame:
        return await source.historical_frame(token, Timeframe.M1, day, day)

    synthetic: list[Instrument] = []
    reports: list[ContinuousReport] = []
    for underlying in underlyings:
        contracts = futures_of(known, underlying.upper())
        series, report = await build_continuous(underlying.upper(), contracts, days, fetch, rule, calendar)
        reports.append(report)
        if series.empty:
            continue
        front = await front_on(contracts, days[-1], fetch, rule, calendar)
        instrument = continuous_instrument(underlying, front)
        await instruments.upsert_many([instrument])
        await candles.add_frame(series, on_conflict="update")
        synthetic.append(instrument)
    return synthetic, reports
