"""The simulated IST clock shared by the simulator's REST and WebSocket servers.

``now() = start + (monotonic() - t0) * speed``: ``speed`` simulated seconds pass per real second.
Tests can jump (:meth:`SimClock.set`, :meth:`SimClock.advance`) or freeze it (``speed=0``).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.time import IST


def default_start(now: datetime | None = None, calendar: SessionCalendar = NSE) -> datetime:
    """Where a simulator started without ``--start`` begins: the real IST now if a session is running,
    otherwise 09:14:50 IST of the next trading day (ten seconds before the open)."""
    real = (now or datetime.now(IST)).astimezone(IST)
    if calendar.is_open(real):
        return real.replace(microsecond=0)
    day = real.date()
    if not calendar.is_trading_day(day) or real.time() >= calendar.open_time:
        day = calendar.next_trading_day(day)
    return datetime.combine(day, time(9, 14, 50), tzinfo=IST)


def parse_start(value: str) -> datetime:
    """``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]`` or ISO with offset; naive values are IST wall clock.
    A bare date means 09:14:50 IST of that day."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(9, 14, 50), tzinfo=IST)
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(
            f"invalid --start {value!r}: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' (IST)"
        ) from None
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


class SimClock:
    """A simulated IST clock running ``speed`` times real time from ``start``."""

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = _time.monotonic,
        *,
        anchor_real: float | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        start = start or default_start()
        if start.tzinfo is None:
            raise ValueError("the simulator start must be tz-aware")
        self._monotonic = monotonic
        self._anchor_sim = start.astimezone(IST)
        # ``anchor_real``: the ``monotonic()`` reading at which the clock showed ``start`` (default now);
        # a clock rebuilt from another process's anchor reads that process's time (CLOCK_MONOTONIC is
        # system-wide).
        self._anchor_real = monotonic() if anchor_real is None else anchor_real
        self.speed = speed

    @property
    def anchor(self) -> tuple[datetime, float]:
        """``(simulated instant, monotonic() reading)`` of the last (re)anchoring: ``now()`` follows from it."""
        return self._anchor_sim, self._anchor_real

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._anchor_real) * self.speed
        return self._anchor_sim + timedelta(seconds=elapsed)

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (tz-aware); time keeps running from there at the same speed."""
        if instant.tzinfo is None:
            raise ValueError("SimClock.set needs a tz-aware datetime")
        self._anchor_sim = instant.astimezone(IST)
        self._anchor_real = self._monotonic()

    def advance(self, seconds: float) -> None:
        """Move the simulated time forward by ``seconds``."""
        self.set(self.now() + timedelta(seconds=seconds))

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.set(self.now())
        self.speed = speed

    def real_seconds_until(self, instant: datetime) -> float:
        """Real seconds until the simulated clock reaches ``instant`` (inf when frozen, 0 if past)."""
        delta = (instant - self.now()).total_seconds()
        if delta <= 0:
            return 0.0
        return float("inf") if self.speed == 0 else delta / self.speed

    def next_expiry(self, issued: datetime | None = None) -> datetime:
        """Next 06:00 IST after ``issued`` (default now): when an access token issued then expires."""
        at = (issued or self.now()).astimezone(IST)
        expiry = datetime.combine(at.date(), time(6, 0), tzinfo=IST)
        return expiry if expiry > at else expiry + timedelta(days=1)
