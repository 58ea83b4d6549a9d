"""`live --wait` decides from the calendar: nothing on closed days, wait for the pre-open, else run."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

import pytest

from tickwise.bootstrap.schedule import DayAction, parse_today, plan_day, wait_for_session
from tickwise.config import Settings
from tickwise.domain.calendar import NSE, SessionCalendar, SpecialSession
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST


def at(day: str, clock: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=IST)


def test_a_saturday_is_closed_and_names_the_next_session() -> None:
    plan = plan_day(at("2026-03-07", "08:00"), NSE)
    assert plan.action is DayAction.CLOSED
    assert plan.message == "no NSE session on Saturday 2026-03-07 (weekend); next session Monday 2026-03-09"


def test_an_exchange_holiday_is_closed() -> None:
    plan = plan_day(at("2026-03-03", "08:00"), NSE)  # Holi
    assert plan.action is DayAction.CLOSED and "exchange holiday" in plan.message
    assert plan.next_session == date(2026, 3, 4)


def test_before_the_pre_open_it_waits_until_0900_ist() -> None:
    plan = plan_day(at("2026-03-04", "06:30"), NSE)
    assert plan.action is DayAction.WAIT and plan.start_at == at("2026-03-04", "09:00")


def test_during_the_pre_open_or_the_session_it_runs_now() -> None:
    assert plan_day(at("2026-03-04", "09:00"), NSE).action is DayAction.RUN
    assert plan_day(at("2026-03-04", "15:29"), NSE).action is DayAction.RUN


def test_after_the_close_the_day_is_over() -> None:
    plan = plan_day(at("2026-03-04", "15:30"), NSE)
    assert plan.action is DayAction.OVER and "closed at 15:30 IST" in plan.message


def test_a_muhurat_session_on_a_holiday_waits_for_its_own_pre_open() -> None:
    cal = SessionCalendar(
        special_sessions=[SpecialSession(date(2025, 10, 21), time(13, 45), time(14, 45), "Muhurat")]
    )
    plan = plan_day(at("2025-10-21", "10:00"), cal)
    assert plan.action is DayAction.WAIT and plan.start_at == at("2025-10-21", "13:30")
    assert "Muhurat" in plan.message


def test_an_injected_date_keeps_the_clock_time() -> None:
    now = at("2026-03-04", "07:45")
    assert parse_today("2026-03-07", now) == at("2026-03-07", "07:45")
    assert parse_today(None, now) == now
    with pytest.raises(ConfigError, match="expected a date"):
        parse_today("tomorrow", now)


class SteppingClock:
    """Wall clock that advances only when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.instant = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.instant

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.instant += timedelta(seconds=seconds)


async def test_waiting_sleeps_in_short_steps_until_the_pre_open_and_then_runs() -> None:
    clock = SteppingClock(at("2026-03-04", "08:58"))
    plan = await wait_for_session(Settings(), now=clock.now, sleep=clock.sleep)
    assert plan.action is DayAction.RUN
    assert clock.instant == at("2026-03-04", "09:00")
    assert sum(clock.sleeps) == 120 and max(clock.sleeps) <= 30


async def test_a_stop_during_the_wait_ends_it_without_running() -> None:
    stop = asyncio.Event()
    stop.set()
    plan = await wait_for_session(Settings(), now=lambda: at("2026-03-04", "06:00"), stop=stop)
    assert plan.action is DayAction.WAIT
