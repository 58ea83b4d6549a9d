"""One live session: the lifecycle around feed -> consumer -> engine -> writer.

The parts, each in its own module:

* :mod:`~tickwise.pipelines.live.consumer` drains the feed's bounded queue (the feed runs with
  backpressure: when the queue is full it stops reading the socket instead of dropping ticks),
  validates ticks, builds 1m bars and hands each closed bar to the engine or holds it for repair;
* :mod:`~tickwise.pipelines.live.engine` turns bars into features, signals and roll-ups;
* :mod:`~tickwise.pipelines.live.feed_watch` spots feed silence, open disconnects and damaged frames
  (net of this event loop's own stalls); :mod:`~tickwise.pipelines.live.planner` and
  :mod:`~tickwise.pipelines.live.repair` turn every span where the feed cannot be trusted (those, the
  start-up gap after a restart, out-of-order and late ticks) into *repair windows* backfilled through
  the broker's REST API, so no candle is lost;
* :mod:`~tickwise.pipelines.live.writer` batches rows to the database through
  :mod:`~tickwise.pipelines.live.sinks`.

:class:`LiveSession` only runs the lifecycle: open the feed, start the consumer, clock, repair (and
health) tasks, stop at ``until`` (clock time or session close), on SIGINT/SIGTERM (``stop``) or on a
fatal feed error, then close the bars that ended, finish pending repairs, flush the writer, close the
feed and report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger

from tickwise.core.candles import CandleBuilder
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import BrokerError
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.planner import MINUTE, minute_of
from tickwise.pipelines.live.repair import Repairer, RepairQueue
from tickwise.pipelines.live.writer import BufferedWriter
from tickwise.ports.alerts import Alerts
from tickwise.ports.clock import Clock
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.market_feed import CandleSource, FeedFactory, FeedGap, MarketFeed

if TYPE_CHECKING:
    from tickwise.pipelines.live.health import HealthMonitor

CLOCK_BEAT_S = 0.05  # the clock task's period (real seconds)


@dataclass
class SessionReport:
    day: str = ""
    started_at: str = ""
    until: str = ""
    ended_by: str = ""
    ticks: int = 0
    ticks_accepted: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    bars: int = 0
    signals: int = 0
    repairs: int = 0
    repaired_bars: int = 0
    rewinds: int = 0
    gaps: int = 0
    late_ticks: int = 0
    dropped_ticks: int = 0
    mode_transition_ticks: int = 0
    errors: int = 0  # bars, batches or repairs that failed (logged; the pipeline went on)
    written: dict[str, int] = field(default_factory=dict)
    spilled_files_left: int = 0
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    seconds: float = 0.0


class LiveSession:
    """Runs the live pipeline for one session day (see the module docstring)."""

    def __init__(
        self,
        *,
        open_feed: FeedFactory,
        source: CandleSource,
        clock: Clock,
        engine: LiveEngine,
        writer: BufferedWriter,
        tokens: Sequence[int],
        day: date,
        until: datetime,
        calendar: SessionCalendar,
        hooks: PipelineHooks | None = None,
        grace_s: float = 2.0,
        speed: float = 1.0,
        spike_band: float = 0.03,
        silence_s: float = 1.5,
        alerts: Alerts | None = None,
        stop: asyncio.Event | None = None,
        health: HealthMonitor | None = None,
        latencies: LatencyLog | None = None,
        wall: Callable[[], float] = time.time,
        feed_close_margin_s: float | None = None,
    ) -> None:
        self.open_feed = open_feed
        self.clock = clock
        self.engine = engine
        self.writer = writer
        self.tokens = list(tokens)
        self.day = day
        self.until = until
        self.calendar = calendar
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self.speed = max(speed, 1e-9)
        # The grace is real waiting time; with an accelerated clock it spans more simulated seconds.
        self.grace = timedelta(seconds=grace_s * max(1.0, speed))
        # Margin after a (re)connect: the server starts streaming at the instant it handles the replayed
        # subscription, a round trip after the handshake we time-stamp; ticks before that instant (but
        # the last-value-cache packet) never come, so the window must reach past it. One real second
        # covers the round trip on a loaded machine; the simulator itself skips nothing after the LVC
        # packet (tests/integration/live/test_simulator_feed_continuity.py).
        self.settle = timedelta(seconds=max(5.0, 1.0 * speed))
        self.alerts = alerts
        self.stop = stop or asyncio.Event()
        self.health = health
        self.latencies = latencies if latencies is not None else LatencyLog()
        self.wall = wall
        self.feed: MarketFeed | None = None
        self.report = SessionReport(day=str(day), until=until.isoformat())
        self.fatal: BaseException | None = None
        self.repairs = RepairQueue(calendar)
        self.watch = FeedWatch(silence_s=silence_s, started=clock.monotonic(), beat_s=CLOCK_BEAT_S)
        self.consumer = TickConsumer(
            engine=engine,
            validator=TickValidator(calendar, spike_band, session_day=day),
            builder=CandleBuilder(Timeframe.M1, calendar, self.grace.total_seconds()),
            repairs=self.repairs,
            watch=self.watch,
            put=writer.put,
            clock=clock,
            until=until,
            hooks=self.hooks,
            wall=wall,
            feed_close_margin_s=feed_close_margin_s,
        )
        self.repairer = Repairer(
            queue=self.repairs,
            source=source,
            engine=engine,
            tokens=self.tokens,
            clock=clock,
            until=until,
            speed=speed,
            hooks=self.hooks,
            feed_down=self.watch.disconnected,
            on_breaker=self._breaker_changed,
            wall=wall,
        )

    # -- feed events -------------------------------------------------------------------------------
    def on_gap(self, gap: FeedGap) -> None:
        """The feed reconnected after ``gap``: repair its minutes (plus the settle margin)."""
        self.report.gaps += 1
        self.hooks.on_reconnect()
        end = (gap.reconnected_at or self.clock.now()) + self.settle
        self.repairs.mark(gap.disconnected_at, end, f"disconnect ({gap.reason})")
        if self.alerts is not None:
            self.alerts.notify(
                "warning",
                "feed_gap",
                f"feed disconnected {gap.disconnected_at:%H:%M:%S}-{end:%H:%M:%S}: {gap.reason}",
            )

    # -- tasks ---------------------------------------------------------------------------------------
    async def run_clock(self) -> None:
        """Close bars on the clock, watch the feed, stop at ``until``."""
        self.watch.start_beats(self.clock.monotonic())
        end = self.until + self.grace
        while not self.stop.is_set():
            await asyncio.sleep(CLOCK_BEAT_S)
            real = self.clock.monotonic()
            self.watch.beat(real)
            now = self.clock.now()
            if self.watch.may_close_on_clock(real):
                self.consumer.close_due(min(now, end))
            self.consumer.mark_suspects(now)
            if now >= end:
                closes = self.calendar.session_close(self.day)
                self.report.ended_by = "until" if self.until < closes else "session end"
                self.stop.set()

    # -- run -----------------------------------------------------------------------------------------
    async def run(self, resume_from: datetime | None) -> SessionReport:
        """Run the session; ``resume_from`` is the first minute missing from the stored history."""
        began = self.clock.monotonic()
        self.report.started_at = self.clock.now().isoformat()
        self.writer.load_spilled()
        self.writer.start()
        feed = self.open_feed(self.on_gap)
        self.feed = feed
        self.watch.attach(feed)
        tasks: list[asyncio.Task[None]] = []
        try:
            async with feed:
                await feed.subscribe(self.tokens, "full")
                try:
                    await feed.wait_connected(timeout_s=30.0)
                    self.hooks.on_feed_connected(True)
                except (TimeoutError, BrokerError) as exc:
                    logger.warning(
                        "live: feed not connected yet ({}); continuing, the feed keeps trying", exc
                    )
                # Ticks before the server handled the subscription never come (but the LVC packet):
                # the repair window reaches past the handshake by ``settle``.
                connected = self.clock.now() + self.settle
                if resume_from is not None:
                    self.repairs.mark(resume_from, connected, "start-up gap")
                tasks = [
                    asyncio.create_task(self.consumer.run(feed.queue), name="live-consumer"),
                    asyncio.create_task(self.run_clock(), name="live-clock"),
                    asyncio.create_task(self.repairer.run(), name="live-repair"),
                ]
                if self.health is not None:
                    tasks.append(asyncio.create_task(self.health.run(self), name="live-health"))
                await self._until_done(feed, tasks)
            # Feed closed: drain what it queued, finish repairs.
            await self._finish(feed)
        finally:
            await self._cancel(tasks)
            await self.writer.close(timeout_s=15.0)
        self._final_report(began)
        if self.fatal is not None and not isinstance(self.fatal, asyncio.CancelledError):
            raise self.fatal
        return self.report

    async def _until_done(self, feed: MarketFeed, tasks: list[asyncio.Task[None]]) -> None:
        run_task = feed.start()
        stop_task = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait([stop_task, run_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is stop_task:
                continue
            failure: BaseException | None = t.exception()
            if failure is None and t is run_task:
                failure = feed.error or BrokerError(f"the ticker stopped ({feed.state})")
            if failure is not None:
                self.fatal = failure
                self.report.ended_by = f"error: {failure}"
        stop_task.cancel()
        if not self.report.ended_by:
            self.report.ended_by = "signal"
        await self._cancel(tasks)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish(self, feed: MarketFeed) -> None:
        queue = feed.queue
        batch = []
        while not queue.empty():
            batch.append(queue.get_nowait())
        if batch:
            self.consumer.consume_batch(batch)
        self.consumer.close_due(min(self.clock.now(), self.until + self.grace))
        # Bars still forming are incomplete: not stored (a restart backfills them through REST).
        deadline = self.clock.monotonic() + 60.0
        repairs = self.repairs
        while repairs.windows and self.clock.monotonic() < deadline and self.fatal is None:
            s, e = repairs.windows[0]
            if self.clock.now() < Repairer.ready_at(e):
                if self.clock.now() >= self.until + self.grace and e >= minute_of(self.until):
                    repairs.clip(minute_of(self.until) - MINUTE)  # minutes from --until on: not this run
                    continue
                await asyncio.sleep(0.05)
                continue
            fetched = await self.repairer.fetch(s, e)
            repairs.apply(s, e, fetched, self.engine, self.tokens, self.wall())
        repairs.release_all(self.engine, self.until)

    def _final_report(self, began: float) -> None:
        r, c = self.report, self.consumer
        r.ticks, r.ticks_accepted, r.mode_transition_ticks = (
            c.ticks,
            c.ticks_accepted,
            c.mode_transition_ticks,
        )
        r.rejections = dict(c.validator.rejections)
        r.bars = self.engine.bars
        r.signals = self.engine.signals
        r.rewinds = self.engine.rewinds
        r.repairs, r.repaired_bars = self.repairs.repairs, self.repairs.repaired_bars
        r.errors = self.engine.errors + c.errors + self.repairer.errors
        r.late_ticks = c.builder.late_ticks
        r.dropped_ticks = self.feed.stats.dropped if self.feed is not None else 0
        r.written = {n: self.writer.stats(n).written for n in ("ticks", "candles", "features", "signals")}
        r.spilled_files_left = self.writer.spilled_files()
        latency = self.latencies.summary()
        r.latency_ms_p50, r.latency_ms_p99 = latency.p50, latency.p99
        r.seconds = round(self.clock.monotonic() - began, 2)

    def _breaker_changed(self, name: str, state: str) -> None:
        self.hooks.on_circuit_breaker(name, state)
        if self.alerts is not None and state == "open":
            self.alerts.notify("critical", f"breaker_{name}", f"circuit breaker {name} open")
