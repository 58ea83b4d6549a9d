"""Index futures: which contract is the front month on a day, and the continuous series' synthetic token.

Roll rule (docs/futures.md, nse-derivatives.md "Continuous series"): with ``roll_sessions = N`` the
front contract on trading day ``d`` is the earliest-expiring contract that expires on or after ``d``
and has at least ``N`` sessions left after ``d`` (sessions in ``(d, expiry]``). ``N = 0`` holds a
contract through its expiry day; with the default ``N = 1`` the last session the series takes from a
contract is the one before its expiry and the series switches to the next contract on the expiry
day, so it never holds a contract on its expiry day, when its price is pinned to the index and its
volume has already moved. In general the last session held is the one with exactly ``N`` sessions
left after it. Sessions come from the NSE calendar, so holidays shift the roll day with
the expiry. The volume rule picks, among the contracts the session rule allows, the earliest one
unless a later contract traded more on the previous session.

Pure functions over :class:`~tickwise.domain.instrument.Instrument` (expiry and lot size as the
instrument dump gives them); no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

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
) -> Instrument:
    """The front-month contract on ``day`` under ``rule``; :class:`NoLiveContract` if none qualifies.

    With ``rule.by_volume`` a later eligible contract takes over once its volume on the previous
    session (``previous_volume`` by token) exceeds the earliest eligible contract's.
    """
    eligible = eligible_contracts(contracts, day, rule, calendar)
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
) -> dict[str, Instrument]:
    """The contract to subscribe for each underlying in the session of ``day`` (live: called at start).

    Rolls happen between sessions, so one answer holds for the whole session. Raises
    :class:`NoLiveContract` naming the underlying when the instrument master has no eligible contract.
    """
    out: dict[str, Instrument] = {}
    for underlying in underlyings:
        name = underlying.upper()
        try:
            out[name] = front_contract(futures_of(instruments, name), day, rule, calendar)
        except NoLiveContract:
            raise NoLiveContract(
                f"{name}: no futures contract to trade on {day} (run `tickwise instruments sync`)"
            ) from None
    return out
