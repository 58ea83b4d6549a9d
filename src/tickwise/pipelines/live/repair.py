"""Repairs: the pending repair windows, the bars held behind them, and the REST backfill that ends them.

:class:`RepairQueue` is the state (windows from :mod:`~tickwise.pipelines.live.planner`, held bars);
:class:`Repairer` is the task that backfills the oldest window through the broker's REST API once its
minutes are complete there, applies it (:func:`~tickwise.pipelines.live.planner.replay_plan` per
instrument) and releases the held bars, so the affected instruments produce signals again only after
the backfill. REST failures are retried on the shared backoff schedule behind a circuit breaker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from loguru import logger

from tickwise.domain.backoff import Backoff
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.batches import bar_batch
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.planner import (
    MINUTE,
    HeldBar,
    Window,
    add_window,
    clip,
    replay_plan,
    subtract,
)
from tickwise.ports.clock import Clock
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.market_feed import CandleSource

# REST retries: 0.25 s doubling up to 10 s, no jitter (one client, one broker).
REST_BACKOFF = Backoff(base=0.25, factor=2.0, cap=10.0, jitter=0.0)


class RepairQueue:
    """Pending repair windows (merged, oldest first) and the bars held behind them, per instrument."""

    def __init__(
        self,
        calendar: SessionCalendar,
        on_mark: Callable[[datetime, datetime, str], None] | None = None,
    ) -> None:
        self.calendar = calendar
        self.on_mark = on_mark  # told of every window added (the session records it durably)
        self.windows: tuple[Window, ...] = ()
        self.held: dict[int, list[HeldBar]] = {}
        self.wake = asyncio.Event()
        self.repairs = 0
        self.repaired_bars = 0

    def mark(self, start: datetime, end: datetime, reason: str) -> None:
        """Add the minutes ``[minute(start), minute(end)]`` to the windows (merged)."""
        windows = add_window(self.windows, start, end, self.calendar)
        if windows == self.windows:
            return
        added = [w for w in windows if w not in self.windows]
        self.windows = windows
        for s, e in added:
            logger.info("live: repair window {}..{} ({})", s.strftime("%H:%M"), e.strftime("%H:%M"), reason)
            if self.on_mark is not None:
                self.on_mark(s, e, reason)
        self.wake.set()

    def holds(self, bar: Bar) -> bool:
        """Must ``bar`` wait behind a pending window?"""
        return bool(self.windows) and bar.time >= self.windows[0][0]

    def hold(self, bar: Bar, closed_at: float) -> None:
        self.held.setdefault(bar.instrument_token, []).append(HeldBar(bar, closed_at))

    def give_up(self, end: datetime) -> None:
        """Drop the windows up to ``end`` (a repair that failed must not block the session forever)."""
        self.windows = tuple(w for w in self.windows if w[0] > end)

    def clip(self, last: datetime) -> None:
        """Forget the minutes after ``last`` (outside the run)."""
        self.windows = clip(self.windows, last)

    def apply(
        self,
        start: datetime,
        end: datetime,
        fetched: dict[int, list[Bar]],
        engine: LiveEngine,
        tokens: Sequence[int],
        closed_at: float,
    ) -> None:
        """The range ``[start, end]`` is backfilled: replay each instrument by its plan."""
        self.windows = subtract(self.windows, start, end)
        next_start = self.windows[0][0] if self.windows else None
        self.repairs += 1
        with bar_batch():  # the repaired bars are one bar batch (pipelines/live/batches.py)
            logger.info("live: repair {:%H:%M}..{:%H:%M} applied, its bars to the engine", start, end)
            self._replay(start, end, fetched, engine, tokens, closed_at, next_start)

    def _replay(
        self,
        start: datetime,
        end: datetime,
        fetched: dict[int, list[Bar]],
        engine: LiveEngine,
        tokens: Sequence[int],
        closed_at: float,
        next_start: datetime | None,
    ) -> None:
        for token in tokens:
            plan = replay_plan(
                start,
                end,
                fetched.get(token, []),
                self.held.get(token, []),
                engine.session_bars(token),
                engine.last_time(token),
                next_start,
                closed_at,
            )
            self.held[token] = list(plan.held)
            self.repaired_bars += plan.repaired
            if plan.rewind_from is not None:
                engine.rewind(token, plan.rewind, closed_at, since=plan.rewind_from)
            for h in plan.process:
                engine.process(h.bar, h.closed_at)

    def release_all(self, engine: LiveEngine, until: datetime) -> int:
        """At the end: process the held bars that opened before ``until`` and before every pending window.

        A bar at or after the start of a window still pending is never stored: the window's minutes are
        unrepaired (the feed's bars there may be partial) and what follows would be computed over them.
        The caller records the pending windows durably first; the next run repairs them. Returns the
        number of bars dropped that way.
        """
        limit = until if not self.windows else min(until, self.windows[0][0])
        dropped = 0
        for held in self.held.values():
            for h in sorted(held, key=lambda h: h.bar.time):
                if h.bar.time < limit:
                    engine.process(h.bar, h.closed_at)
                else:
                    dropped += 1
        self.held.clear()
        return dropped


class Repairer:
    """Backfills the oldest repair window through REST once its minutes are complete, then applies it."""

    def __init__(
        self,
        *,
        queue: RepairQueue,
        source: CandleSource,
        engine: LiveEngine,
        tokens: Sequence[int],
        clock: Clock,
        until: datetime,
        speed: float,
        hooks: PipelineHooks,
        feed_down: Callable[[], bool],
        on_breaker: Callable[[str, str], None] | None = None,
        wall: Callable[[], float] = time.time,
        on_repaired: Callable[[datetime, datetime], Awaitable[None]] | None = None,
    ) -> None:
        self.queue = queue
        self.on_repaired = on_repaired
        self.source = source
        self.engine = engine
        self.tokens = list(tokens)
        self.clock = clock
        self.until = until
        self.speed = max(speed, 1e-9)
        self.hooks = hooks
        self.feed_down = feed_down
        self.wall = wall
        self.breaker = CircuitBreaker("broker", cooldown_s=5.0, on_change=on_breaker)
        self.errors = 0

    @staticmethod
    def ready_at(end: datetime) -> datetime:
        """When REST has the minute ``end`` complete (its close plus a second)."""
        return end + MINUTE + timedelta(seconds=1)

    async def run(self) -> None:
        """Repair windows oldest first, for ever (cancelled at the end of the session)."""
        q = self.queue
        while True:
            if not q.windows:
                q.wake.clear()
                await q.wake.wait()
                continue
            s, e = q.windows[0]
            # The open gap (still disconnected) keeps growing: wait for a reconnect before fetching.
            if self.feed_down():
                await asyncio.sleep(0.05)
                continue
            ready_at = self.ready_at(e)
            while self.clock.now() < ready_at:  # noqa: ASYNC110 - waiting on the market clock, not an event
                await asyncio.sleep(
                    min(0.2, max(0.01, (ready_at - self.clock.now()).total_seconds() / self.speed))
                )
            fetched = await self.fetch(s, e)
            try:
                q.apply(s, e, fetched, self.engine, self.tokens, self.wall())
            except Exception as exc:  # never let a repair stop the pipeline
                self.errors += 1
                logger.exception("live: repair of {}..{} failed: {}", s, e, exc)
                q.give_up(e)
                continue
            if self.on_repaired is not None:
                await self.on_repaired(s, e)

    async def fetch(self, start: datetime, end: datetime) -> dict[int, list[Bar]]:
        """The REST 1m bars of ``[start, end]`` per instrument (retried until the broker answers)."""
        out: dict[int, list[Bar]] = {}
        for token in self.tokens:
            attempt = 0
            while True:
                if not self.breaker.allow():
                    await asyncio.sleep(0.5)
                    continue
                try:
                    candles = await self.source.historical(token, Timeframe.M1, start, end)
                except Exception as exc:
                    self.breaker.failure()
                    attempt += 1
                    if attempt in (1, 5) or attempt % 20 == 0:
                        logger.warning("live: REST backfill of {} failed ({}): {}", token, attempt, exc)
                    await asyncio.sleep(REST_BACKOFF.delay(attempt))
                    continue
                self.breaker.success()
                break
            # Only bars inside the window and ending by --until belong to this run; they are this
            # run's live bars (stored with source 'live' like the bars built from ticks).
            out[token] = [
                Bar(dataclasses.replace(c, source="live"))
                for c in candles
                if start <= c.time <= end and c.time + MINUTE <= self.until
            ]
        self.hooks.on_backfilled("1m", sum(len(v) for v in out.values()))
        return out
