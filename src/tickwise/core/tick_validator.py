"""Tick validation: accept a tick or name why it is rejected (counted, never raised).

Checks, in order (the first failing one is the reason):

1. ``malformed``: the tick cannot be inspected at all (a wrong type somewhere); never an exception.
2. ``non_finite_price`` / ``non_positive_price``: NSE cash and F&O prices are finite and positive.
3. ``missing_timestamp``: no ``exchange_timestamp`` (``ltp`` packets, index quote packets) or a naive
   one. Every later check and the candle minute hang on the exchange time, so such ticks cannot be used.
4. ``stale``: the exchange time is not on ``session_day`` (when given), or older than ``max_age_s``
   before the ``now`` passed to :meth:`TickValidator.check` (when both are given). This is how the
   last-value-cache packet that Kite sends on subscribe, possibly hours old, is kept out.
5. ``outside_market_hours``: not inside a regular session of the calendar (the 09:08 pre-open
   equilibrium trade included; its volume still reaches the first candle through the cumulative
   ``volume_traded``).
6. ``out_of_order``: older exchange time than the last accepted tick of that instrument.
7. ``duplicate``: same exchange time as the last accepted tick and identical content (price, volumes,
   quantities, OI and depth) to one of the ticks accepted in that second. Several genuine snapshots
   can share a one-second timestamp, so equal time alone is not a duplicate.
8. ``volume_decreased``: cumulative ``volume_traded`` below the last accepted value in the same
   session (a replayed older snapshot in the same second, or a corrupt packet).
9. ``spike``: price more than ``spike_band`` (default 3 %) away from the reference: the median of the
   last ``reference_window`` accepted prices of the instrument (default 1, i.e. the previous valid
   snapshot: exactly the simulator's candle rule, see ``adapters/kite/simulator/market.py``; a window
   of 3-5 is more robust on a real feed). The 09:08 pre-open equilibrium trade, although rejected as
   outside market hours, seeds the reference of its session, as in the simulator's rule. With no
   reference yet (first tick of a session joined mid-day), the previous close from the packet's
   ``ohlc`` is the reference with band ``open_band`` (default 20 %, NSE's widest price band).
   Genuine one-second moves are far below 3 %. A genuine level shift must not be locked out forever: when
   ``confirm_ticks`` consecutive out-of-band ticks agree with each other (each within ``spike_band``
   of the first of them), the last one is accepted and the reference restarts from them. The first
   ``confirm_ticks - 1`` ticks of a real jump are thus lost (their volume is not: candle volume comes
   from the cumulative counter).

State is per instrument and resets at a new session day (volume counter, price reference).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from statistics import median

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST


class Rejection(StrEnum):
    """Why a tick was rejected; ``.value`` is the counter key."""

    MALFORMED = "malformed"
    NON_FINITE_PRICE = "non_finite_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    MISSING_TIMESTAMP = "missing_timestamp"
    STALE = "stale"
    OUTSIDE_MARKET_HOURS = "outside_market_hours"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"
    VOLUME_DECREASED = "volume_decreased"
    SPIKE = "spike"


_ContentKey = tuple[object, ...]


@dataclass(slots=True)
class _TokenState:
    day: date
    last_ts: datetime | None = None
    # A list, not a set: a set hashes every accepted tick's key, and hashing a book the codec decodes
    # lazily builds its ten levels (most of the consumer's per-tick CPU); equality compares wire bytes.
    # A second holds a handful of snapshots per instrument, so the scan is short.
    keys_at_last_ts: list[_ContentKey] = field(default_factory=list)
    last_volume: int | None = None
    prices: deque[float] = field(default_factory=deque)
    pending: list[float] = field(default_factory=list)


def _content_key(tick: Tick) -> _ContentKey:
    return (
        tick.last_price,
        tick.volume_traded,
        tick.last_traded_quantity,
        tick.average_traded_price,
        tick.total_buy_quantity,
        tick.total_sell_quantity,
        tick.last_trade_time,
        tick.oi,
        tick.depth,
    )


class TickValidator:
    """Stateful per-instrument tick filter; see the module docstring for the rules.

    >>> validator = TickValidator()
    >>> reason = validator.check(tick)   # None when accepted
    >>> validator.rejections["spike"]
    """

    def __init__(
        self,
        calendar: SessionCalendar = NSE,
        spike_band: float = 0.03,
        *,
        open_band: float | None = 0.20,
        reference_window: int = 1,
        confirm_ticks: int = 3,
        session_day: date | None = None,
        max_age_s: float | None = None,
    ) -> None:
        if spike_band <= 0:
            raise ValueError(f"spike_band must be positive, got {spike_band}")
        if reference_window < 1:
            raise ValueError(f"reference_window must be >= 1, got {reference_window}")
        if confirm_ticks < 1:
            raise ValueError(f"confirm_ticks must be >= 1, got {confirm_ticks}")
        self.calendar = calendar
        self.spike_band = spike_band
        self.open_band = open_band
        self.reference_window = reference_window
        self.confirm_ticks = confirm_ticks
        self.session_day = session_day
        self.max_age_s = max_age_s
        self.accepted = 0
        self.rejections: Counter[str] = Counter()
        self._state: dict[int, _TokenState] = {}

    def check(self, tick: Tick, now: datetime | None = None) -> Rejection | None:
        """Return None when ``tick`` is accepted (and remembered), else the rejection reason (counted)."""
        try:
            reason = self._check(tick, now)
        except (TypeError, ValueError, AttributeError, OverflowError):
            reason = Rejection.MALFORMED
        if reason is None:
            self.accepted += 1
        else:
            self.rejections[reason.value] += 1
        return reason

    def accept(self, tick: Tick, now: datetime | None = None) -> bool:
        """True when ``tick`` passes :meth:`check`."""
        return self.check(tick, now) is None

    def reset(self, instrument_token: int | None = None) -> None:
        """Forget the state of one instrument (or all), e.g. after a reconnect gap."""
        if instrument_token is None:
            self._state.clear()
        else:
            self._state.pop(instrument_token, None)

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    def _check(self, tick: Tick, now: datetime | None) -> Rejection | None:
        price = tick.last_price
        if not isinstance(price, int | float) or isinstance(price, bool):
            return Rejection.MALFORMED
        if not math.isfinite(price):
            return Rejection.NON_FINITE_PRICE
        if price <= 0:
            return Rejection.NON_POSITIVE_PRICE
        ts = tick.exchange_timestamp
        if ts is None or ts.tzinfo is None:
            return Rejection.MISSING_TIMESTAMP
        day = ts.astimezone(IST).date()
        if self.session_day is not None and day != self.session_day:
            return Rejection.STALE
        if self.max_age_s is not None and now is not None and (now - ts).total_seconds() > self.max_age_s:
            return Rejection.STALE
        token = tick.instrument_token
        state = self._state.get(token)
        if not self.calendar.is_open(ts):
            if ts < self.calendar.session_open(day) and self.calendar.is_trading_day(day):
                self._seed_pre_open(token, state, day, price)
            return Rejection.OUTSIDE_MARKET_HOURS
        if state is None or state.day != day:
            if state is not None and day < state.day:
                return Rejection.OUT_OF_ORDER
            state = self._new_state(token, day)

        key = _content_key(tick)
        if state.last_ts is not None:
            if ts < state.last_ts:
                return Rejection.OUT_OF_ORDER
            if ts == state.last_ts and key in state.keys_at_last_ts:
                return Rejection.DUPLICATE
        volume = tick.volume_traded
        if volume is not None and state.last_volume is not None and volume < state.last_volume:
            return Rejection.VOLUME_DECREASED

        if self._is_spike(tick, price, state):
            return Rejection.SPIKE

        # Accepted: remember it.
        if state.last_ts is None or ts != state.last_ts:
            state.last_ts = ts
            state.keys_at_last_ts = []
        state.keys_at_last_ts.append(key)
        if volume is not None:
            state.last_volume = volume
        return None

    def _new_state(self, token: int, day: date) -> _TokenState:
        state = _TokenState(day=day, prices=deque(maxlen=self.reference_window))
        self._state[token] = state
        return state

    def _seed_pre_open(self, token: int, state: _TokenState | None, day: date, price: float) -> None:
        """The pre-open equilibrium trade sets the day's first price: use it as the spike reference."""
        if state is None or state.day < day:
            state = self._new_state(token, day)
        if state.day == day and state.last_ts is None:
            state.prices.clear()
            state.prices.append(price)

    def _is_spike(self, tick: Tick, price: float, state: _TokenState) -> bool:
        """Spike test with level-shift confirmation; updates the price reference when accepting."""
        if state.prices:
            reference: float | None = median(state.prices)
            band: float | None = self.spike_band
        elif self.open_band is not None and tick.ohlc is not None and tick.ohlc.close > 0:
            reference, band = tick.ohlc.close, self.open_band
        else:
            reference, band = None, None
        if reference is None or band is None or abs(price - reference) <= band * reference:
            state.pending.clear()
            state.prices.append(price)
            return False
        if state.pending and abs(price - state.pending[0]) <= self.spike_band * state.pending[0]:
            state.pending.append(price)
        else:
            state.pending = [price]
        if len(state.pending) >= self.confirm_ticks:
            # A consistent new level: accept it and restart the reference from it.
            state.prices.clear()
            state.prices.extend(state.pending)
            state.pending.clear()
            return False
        return True
