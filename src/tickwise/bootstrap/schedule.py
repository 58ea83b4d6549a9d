"""Every trading day: decide what ``tickwise live --wait`` does today, and wait for the pre-open.

:func:`plan_day` is pure (an instant and a calendar in, a :class:`DayPlan` out), so the decision is
tested without waiting; :func:`wait_for_session` does the sleeping. ``live --wait`` consults it before
anything else, so a weekend or a holiday ends at once with one line, before the database, the history
or the simulator are touched.

"Today" can be injected (``--today YYYY-MM-DD`` or ``TICKWISE_TODAY``) to rehearse a given day: the
date is replaced, the IST clock time stays the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

from loguru import logger

from tickwise.config import Settings
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST

# The NSE pre-open call auction starts 15 minutes before the open (09:00 for the 09:15 session);
# starting then leaves time to load the history and warm the feature windows before the first tick.
PRE_OPEN_LEAD = timedelta(minutes=15)


class DayAction(Enum):
    CLOSED = "closed"  # weekend or holiday: nothing to do today
    OVER = "over"  # today's session has already closed
    WAIT = "wait"  # sleep until the pre-open, then run
    RUN = "run"  # within the pre-open or the session: run now


@dataclass(frozen=True, slots=True)
class DayPlan:
    action: DayAction
    day: date
    start_at: datetime  # when the run begins (the pre-open, or now)
    next_session: date
    message: str


def _label(day: date) -> str:
    return f"{day:%A} {day.isoformat()}"


def plan_day(now: datetime, calendar: SessionCalendar, lead: timedelta = PRE_OPEN_LEAD) -> DayPlan:
    """What to do at ``now`` (tz-aware): nothing (closed, over), wait until the pre-open, or run."""
    local = now.astimezone(IST)
    day = local.date()
    following = calendar.next_trading_day(day)
    if not calendar.is_trading_day(day):
        why = "weekend" if day.weekday() >= 5 else "exchange holiday"
        return DayPlan(
            DayAction.CLOSED,
            day,
            local,
            following,
            f"no NSE session on {_label(day)} ({why}); next session {_label(following)}",
        )
    close = calendar.session_close(day)
    if local >= close:
        return DayPlan(
            DayAction.OVER,
            day,
            local,
            following,
            f"today's NSE session ({day}) closed at {close:%H:%M} IST; next session {_label(following)}",
        )
    pre_open = calendar.session_open(day) - lead
    special = calendar.special_session(day)
    name = f" ({special.name})" if special else ""
    if local < pre_open:
        return DayPlan(
            DayAction.WAIT,
            day,
            pre_open,
            following,
            f"waiting for the pre-open of {_label(day)}{name} at {pre_open:%H:%M} IST",
        )
    return DayPlan(
        DayAction.RUN, day, local, following, f"NSE session of {_label(day)}{name} until {close:%H:%M} IST"
    )


def parse_today(text: str | None, now: datetime) -> datetime:
    """``now`` in IST, with its date replaced by ``text`` (YYYY-MM-DD) when given."""
    local = now.astimezone(IST)
    if not text:
        return local
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--today / TICKWISE_TODAY {text!r}: expected a date such as 2026-03-03") from None
    return local.replace(year=day.year, month=day.month, day=day.day)


async def wait_for_session(
    settings: Settings,
    *,
    today: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(IST),
    sleep: Callable[[float], Awaitable[object]] | None = None,
    stop: asyncio.Event | None = None,
) -> DayPlan:
    """Plan today; for WAIT sleep until the pre-open (or ``stop``) and return the plan to run.

    The caller runs the session only when the returned action is RUN; CLOSED and OVER are reported,
    and so is a WAIT that ``stop`` (SIGTERM) interrupted.
    """
    from tickwise.bootstrap.calendar import calendar_of

    injected = parse_today(today, now())
    calendar = calendar_of(settings, injected.date())
    plan = plan_day(injected, calendar)
    if plan.action is not DayAction.WAIT:
        return plan
    logger.info(plan.message)
    # Sleep in short steps against the real clock: a suspended laptop or a clock step must not
    # oversleep the open, and SIGTERM must end the wait promptly.
    offset = injected - now().astimezone(IST)
    while True:
        remaining = (plan.start_at - (now().astimezone(IST) + offset)).total_seconds()
        if remaining <= 0:
            break
        if stop is not None and stop.is_set():
            return plan
        step = min(remaining, 30.0)
        if sleep is not None:
            await sleep(step)
        elif stop is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), step)
        else:
            await asyncio.sleep(step)
    return DayPlan(DayAction.RUN, plan.day, plan.start_at, plan.next_session, plan.message)


def check_until(until: str) -> None:
    """Validate a ``--until`` value's syntax now (ConfigError), on a probe day; the real day comes later."""
    from tickwise.domain.calendar import NSE
    from tickwise.pipelines.live.until import parse_until

    probe = datetime(2025, 1, 6, 9, 14, 50, tzinfo=IST)
    if not until.strip().startswith("+"):
        probe = probe.replace(hour=0, minute=0, second=0)
    parse_until(until, date(2025, 1, 6), probe, NSE)
