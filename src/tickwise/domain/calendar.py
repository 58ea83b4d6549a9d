"""The NSE trading-session calendar (IST), data-driven so special sessions can be configured.

Regular session: 09:15-15:30 IST, Monday to Friday, exchange holidays excluded; 375 one-minute
bars stamped 09:15 ... 15:29. Intraday candles of every timeframe are aligned to the 09:15 open, so
the last 60m bar of a session (15:15) covers only 15 minutes, as on Kite.

Special sessions (Muhurat trading on Diwali, an exchange-announced Saturday session) trade on their
own hours and override both the weekend and the holiday list; their bars are aligned to their own open.

The running application builds its calendar from a maintained source (``exchange_calendars``'s XBOM
calendar, loaded by ``adapters.calendar``) plus the configured extra holidays and special sessions.
This module stays standard-library only, so the holidays below are only the default of the pure code
and the simulator; a unit test pins them to the library so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

# NSE equity-segment trading holidays (weekday ones). Extend through configuration
# (trading.holidays) when the exchange publishes a new list.
# fmt: off
NSE_HOLIDAYS: frozenset[date] = frozenset(
    date.fromisoformat(d)
    for d in (
        # 2024
        "2024-01-22", "2024-01-26", "2024-03-08", "2024-03-25", "2024-03-29", "2024-04-11",
        "2024-04-17", "2024-05-01", "2024-05-20", "2024-06-17", "2024-07-17", "2024-08-15",
        "2024-10-02", "2024-11-01", "2024-11-15", "2024-11-20", "2024-12-25",
        # 2025
        "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
        "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22",
        "2025-11-05", "2025-12-25",
        # 2026
        "2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03", "2026-04-14",
        "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02", "2026-10-20",
        "2026-11-10", "2026-11-24", "2026-12-25",
    )
)
# fmt: on

# The last day the holiday list above is known for.
NSE_HOLIDAYS_KNOWN_THROUGH = date(2026, 12, 31)

SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
PRE_OPEN_EQUILIBRIUM = time(9, 8)


@dataclass(frozen=True, slots=True)
class SpecialSession:
    """A session on its own hours (IST): Muhurat trading, or a Saturday the exchange opens."""

    day: date
    open: time
    close: time
    name: str = "special session"

    def __post_init__(self) -> None:
        if self.close <= self.open:
            raise ValueError(f"special session {self.day}: close {self.close} is not after open {self.open}")

    @property
    def minutes(self) -> int:
        return _minutes(self.close) - _minutes(self.open)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


class SessionCalendar:
    """Which days trade, and where every intraday bar of a session begins."""

    def __init__(
        self,
        holidays: Iterable[date] = NSE_HOLIDAYS,
        session_open: time = SESSION_OPEN,
        session_close: time = SESSION_CLOSE,
        special_sessions: Iterable[SpecialSession] = (),
        known_through: date | None = None,
    ) -> None:
        self.holidays = frozenset(holidays)
        self.open_time = session_open
        self.close_time = session_close
        # Minutes of a regular session; a special session has its own (see session_minutes_on).
        self.session_minutes = _minutes(session_close) - _minutes(session_open)
        self.special_sessions = {s.day: s for s in special_sessions}
        # None: the holiday source does not say how far it reaches (e.g. a hand-made test calendar).
        self.known_through = known_through

    def is_trading_day(self, day: date) -> bool:
        if day in self.special_sessions:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def covers(self, day: date) -> bool:
        """True when the holidays of ``day``'s year are known (False means: weekdays assumed open)."""
        return self.known_through is None or day <= self.known_through

    def special_session(self, day: date) -> SpecialSession | None:
        return self.special_sessions.get(day)

    def session_minutes_on(self, day: date) -> int:
        """Minutes of the session of ``day`` (0 on a closed day)."""
        if not self.is_trading_day(day):
            return 0
        special = self.special_sessions.get(day)
        return special.minutes if special else self.session_minutes

    def trading_days(self, first: date, last: date) -> list[date]:
        """Trading days in ``[first, last]`` (both inclusive)."""
        days = []
        day = first
        while day <= last:
            if self.is_trading_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def next_trading_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def previous_trading_day(self, day: date) -> date:
        day -= timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day

    def session_open(self, day: date) -> datetime:
        special = self.special_sessions.get(day)
        return datetime.combine(day, special.open if special else self.open_time, tzinfo=IST)

    def session_close(self, day: date) -> datetime:
        special = self.special_sessions.get(day)
        return datetime.combine(day, special.close if special else self.close_time, tzinfo=IST)

    def is_open(self, instant: datetime) -> bool:
        """True while the session of a trading day is running (open inclusive, close exclusive)."""
        local = instant.astimezone(IST)
        day = local.date()
        if not self.is_trading_day(day):
            return False
        # Clock-time comparison, no datetime building: this runs for every tick in the live mode.
        clock = local.time()
        special = self.special_sessions.get(day)
        if special is None:
            return self.open_time <= clock < self.close_time
        return special.open <= clock < special.close

    def bar_opens(self, day: date, timeframe: Timeframe = Timeframe.M1) -> list[datetime]:
        """Open instants of every bar of ``timeframe`` in the session of ``day`` (empty on holidays)."""
        if not self.is_trading_day(day):
            return []
        if timeframe is Timeframe.D1:
            return [datetime.combine(day, time(0, 0), tzinfo=IST)]
        start = self.session_open(day)
        step = timeframe.minutes
        return [start + timedelta(minutes=m) for m in range(0, self.session_minutes_on(day), step)]

    def bar_open(self, instant: datetime, timeframe: Timeframe) -> datetime:
        """Open of the session-aligned bar of ``timeframe`` that contains ``instant``."""
        local = instant.astimezone(IST)
        if timeframe is Timeframe.D1:
            return datetime.combine(local.date(), time(0, 0), tzinfo=IST)
        start = self.session_open(local.date())
        minutes = int((local - start).total_seconds() // 60)
        return start + timedelta(minutes=(minutes // timeframe.minutes) * timeframe.minutes)

    def bars_per_session(self, timeframe: Timeframe, day: date | None = None) -> int:
        """Bars of ``timeframe`` in a regular session, or in the session of ``day`` when given."""
        if timeframe is Timeframe.D1:
            return 1
        minutes = self.session_minutes if day is None else self.session_minutes_on(day)
        return -(-minutes // timeframe.minutes)


NSE = SessionCalendar(known_through=NSE_HOLIDAYS_KNOWN_THROUGH)
