"""Index futures: which contract is the front month on a day, and the continuous series' synthetic token.

Roll rule (docs/futures.md, nse-derivatives.md "Continuous series"): with ``roll_sessions = N`` the
front contract on trading day ``d`` is the earliest-expiring contract that expires on or after ``d``
and has at least ``N`` sessions left after ``d`` (sessions in ``(d, expiry]``). ``N = 0`` holds a
contract through its expiry day; with the default ``N = 1`` the last session the series takes from a
contract is the one before its expiry and the series switches to the next contract on the expiry
day, so it never holds a contract on its expiry day, when its price is pinned to the index and its
volume has already moved. In general the last session held is the one with exactly ``N`` sessions
left after it. Sessions come from the NSE calendar, so holidays shift the roll day with
the expiry. The volume rule (``by_volume``) picks, among the contracts the session rule allows, the
earliest one unless a later contract traded more on the previous session; it can only roll earlier
than the date rule, never later (the date rule's contract is always among the allowed ones, and an
expiring contract leaves the allowed set on the date rule's day), and never back to a contract the
series already left (``held``).

Back-adjustment (historical and live alike): at a roll, ``gap = close(new) - close(old)`` at the old
contract's last minute (:func:`roll_gap`) is added to every earlier price (:func:`shift_prices`).

Pure functions over :class:`~tickwise.domain.instrument.Instrument` (expiry and lot size as the
instrument dump gives them); no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import pandas as pd

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.instrument import Instrument

DEFAULT_ROLL_SESSIONS = 1
# Continuous series live under synthetic tokens that no Kite segment uses (segment byte 0xFE), one per
# underlying, derived from its name so the token is stable across runs and machines.
CONTINUOUS_SEGMENT = 0xFE


class NoLiveContract(LookupError):
    """No listed contract of the underlying is tradable on the day under the roll rule."""


@dataclass(frozen=True, slots=True)
class RollRule:
    """How the continuous series moves from one contract to the next."""

    roll_sessions: int = DEFAULT_ROLL_SESSIONS
    by_volume: bool = False

    def __post_init__(self) -> None:
        if self.roll_sessions < 0:
            raise ValueError("roll_sessions must be >= 0")

    @classmethod
    def of(cls, roll_sessions: int, by: Literal["date", "volume"] = "date") -> RollRule:
        """The rule of the configuration keys ``trading.futures_roll_sessions`` and ``trading.futures_roll``."""
        return cls(roll_sessions, by_volume=by == "volume")


DEFAULT_RULE = RollRule()


def sessions_left(day: date, expiry: date, calendar: SessionCalendar = NSE) -> int:
    """Trading sessions after ``day`` up to and including ``expiry`` (0 on the expiry day)."""
    if expiry <= day:
        return 0
    return sum(1 for d in calendar.trading_days(day, expiry) if d > day)


def futures_of(instruments: Sequence[Instrument], underlying: str) -> list[Instrument]:
    """The futures contracts of ``underlying`` (the dump's ``name``), ordered by expiry."""
    found = [
        i for i in instruments if i.instrument_type == "FUT" and i.name == underlying and i.expiry is not None
    ]
    return sorted(found, key=lambda i: (i.expiry or date.max, i.instrument_token))


def eligible_contracts(
    contracts: Sequence[Instrument], day: date, rule: RollRule = DEFAULT_RULE, calendar: SessionCalendar = NSE
) -> list[Instrument]:
    """Contracts the session rule allows on ``day`` (never an expired one), earliest expiry first."""
    out = []
    for c in sorted(contracts, key=lambda i: (i.expiry or date.max, i.instrument_token)):
        if c.expiry is None or c.expiry < day:
            continue
        if sessions_left(day, c.expiry, calendar) >= rule.roll_sessions:
            out.append(c)
    return out


def front_contract(
    contracts: Sequence[Instrument],
    day: date,
    rule: RollRule = DEFAULT_RULE,
    calendar: SessionCalendar = NSE,
    previous_volume: Mapping[int, int] | None = None,
    held: Instrument | None = None,
) -> Instrument:
    """The front-month contract on ``day`` under ``rule``; :class:`NoLiveContract` if none qualifies.

    With ``rule.by_volume`` a later eligible contract takes over once its volume on the previous
    session (``previous_volume`` by token) exceeds the earliest eligible contract's; ``held`` (the
    previous session's front, if known) keeps a volume roll from going back to an earlier contract.
    """
    eligible = eligible_contracts(contracts, day, rule, calendar)
    if held is not None and held.expiry is not None:
        later = [c for c in eligible if c.expiry is not None and c.expiry >= held.expiry]
        eligible = later or eligible
    if not eligible:
        raise NoLiveContract(f"no futures contract is tradable on {day} under {rule}")
    front = eligible[0]
    if rule.by_volume and previous_volume:
        best = previous_volume.get(front.instrument_token, 0)
        for c in eligible[1:]:
            v = previous_volume.get(c.instrument_token, 0)
            if v > best:
                front, best = c, v
    return front


def volume_candidates(
    contracts: Sequence[Instrument], day: date, rule: RollRule = DEFAULT_RULE, calendar: SessionCalendar = NSE
) -> list[Instrument]:
    """The contracts whose previous-session volume the volume rule compares on ``day`` (none by date)."""
    if not rule.by_volume:
        return []
    eligible = eligible_contracts(contracts, day, rule, calendar)
    return eligible if len(eligible) > 1 else []


def roll_gap(old: pd.DataFrame, new: pd.DataFrame) -> float:
    """``close(new) - close(old)`` at the old contract's last minute of its last session held.

    ``old``/``new``: the two contracts' 1-minute candles of that session (``time`` and ``close``).
    When the new contract has no candle at that minute, its last close of the day is used; with no
    candle at all the gap is 0.0 (no adjustment is better than a made-up one).
    """
    if old.empty or new.empty:
        return 0.0
    old = old.sort_values("time")
    last = old["time"].iloc[-1]
    same = new[new["time"] == last]
    new_close = (
        float(same["close"].iloc[-1]) if not same.empty else float(new.sort_values("time")["close"].iloc[-1])
    )
    return round(new_close - float(old["close"].iloc[-1]), 2)


PRICE_COLUMNS = ("open", "high", "low", "close")


def shift_prices(frame: pd.DataFrame, offset: float) -> pd.DataFrame:
    """``frame`` with ``offset`` added to open/high/low/close, rounded to the paisa (volumes stay raw)."""
    out = frame.copy()
    for col in PRICE_COLUMNS:
        if col in out.columns:
            out[col] = (out[col].astype(float) + offset).round(2)
    return out


def continuous_token(underlying: str) -> int:
    """The synthetic instrument token of ``underlying``'s continuous front-month series.

    A stable 24-bit hash of the name shifted like a Kite token, with segment byte 0xFE so it can never
    collide with a real instrument's token.
    """
    h = 0
    for ch in underlying.upper().encode():
        h = (h * 131 + ch) % (1 << 24)
    return h << 8 | CONTINUOUS_SEGMENT


def continuous_symbol(underlying: str) -> str:
    """The tradingsymbol the continuous series is stored under, e.g. ``NIFTY-FUT-CONT``."""
    return f"{underlying.upper()}-FUT-CONT"


def session_contracts(
    instruments: Sequence[Instrument],
    underlyings: Sequence[str],
    day: date,
    rule: RollRule = DEFAULT_RULE,
    calendar: SessionCalendar = NSE,
    previous_volume: Mapping[int, int] | None = None,
    held: Mapping[str, Instrument] | None = None,
) -> dict[str, Instrument]:
    """The contract to subscribe for each underlying in the session of ``day`` (live: called at start).

    Rolls happen between sessions, so one answer holds for the whole session. ``previous_volume``
    (by token) and ``held`` (by underlying) feed the volume rule as in :func:`front_contract`. Raises
    :class:`NoLiveContract` naming the underlying when the instrument master has no eligible contract.
    """
    out: dict[str, Instrument] = {}
    for underlying in underlyings:
        name = underlying.upper()
        try:
            out[name] = front_contract(
                futures_of(instruments, name),
                day,
                rule,
                calendar,
                previous_volume,
                held.get(name) if held else None,
            )
        except NoLiveContract:
            raise NoLiveContract(
                f"{name}: no futures contract to trade on {day} (run `tickwise instruments sync`)"
            ) from None
    return out
