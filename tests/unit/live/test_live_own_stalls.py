"""A stall of the session's own event loop is not feed silence; a silent feed still is."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from tickwise.adapters.kite.ticker_state import TickerStats
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.session import LiveSession

DAY = datetime(2026, 3, 2, tzinfo=IST).date()
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=IST)


def _session() -> tuple[LiveSession, SimpleNamespace]:
    began = time.monotonic()
    broker = SimpleNamespace(now=lambda: T0 + timedelta(seconds=time.monotonic() - began))
    session = LiveSession(
        broker=broker,
        engine=SimpleNamespace(),
        writer=SimpleNamespace(),
        tokens=[1],
        day=DAY,  # type: ignore[arg-type]
        until=T0 + timedelta(hours=1),
        calendar=NSE,
        hooks=NullHooks(),
        silence_s=1.0,
    )
    ticker = SimpleNamespace(stats=TickerStats(), gaps=[])
    session.ticker = ticker  # type: ignore[assignment]
    return session, ticker


def _frame(session: LiveSession, ticker: Any) -> None:
    ticker.stats.frames += 1
    session._watch_silence(session.broker.now())


async def test_a_blocked_event_loop_is_not_reported_as_feed_silence() -> None:
    session, ticker = _session()
    clock = asyncio.create_task(session.clock())
    try:
        await asyncio.sleep(0.1)
        _frame(session, ticker)
        time.sleep(1.6)  # noqa: ASYNC251 - CPU-bound work of our own: the feed queued up meanwhile
        _frame(session, ticker)
        await asyncio.sleep(0.2)
        _frame(session, ticker)
    finally:
        session.stop.set()
        await clock
    assert session.windows == []


async def test_a_feed_silent_while_the_loop_was_free_is_marked_for_repair() -> None:
    session, ticker = _session()
    clock = asyncio.create_task(session.clock())
    try:
        await asyncio.sleep(0.1)
        _frame(session, ticker)
        await asyncio.sleep(1.6)  # the loop is free; nothing arrives
        _frame(session, ticker)
    finally:
        session.stop.set()
        await clock
    assert len(session.windows) == 1
