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
feed and report. The writer task is supervised like the others: its death ends the session with
:class:`~tickwise.pipelines.live.writer.WriterStopped`. A session never stores a bar behind a repair
window it could not finish, nor (after a fatal feed error) a bar still forming: those windows are
recorded through :class:`~tickwise.ports.repair_windows.RepairWindowRepository` first, and the next run
of the day repairs them before using its feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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
from tickwise.pipelines.live.writer import BufferedWriter, WriterStopped
from tickwise.ports.alerts import Alerts
from tickwise.ports.clock import Clock
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.market_feed import CandleSource, FeedFactory, FeedGap, MarketFeed
from tickwise.ports.repair_windows import RepairWindowRepository

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
    dropped_rows: dict[str, int] = field(default_factory=dict)  # accepted rows lost (full disk/cap), alerted
    spill_files_rejected: int = 0  # spill files set aside in spill_dir/rejected/
    repair_windows_left: int = 0  # windows recorded for the next run to repair
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    seconds: float = 0.0
    paper: dict[str, object] | None = None  # `live --paper`: the paper session's summary


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
        windows: RepairWindowRepository | None = None,
        feed_close_margin_s: float | None = None,
    ) -> None:
        self.open_feed = open_feed
        self.window_store = windows
        self._resumed_from: datetime | None = None  # start of the start-up gap until it is repaired
        self._started_at = datetime.now(UTC)  # windows recorded before it are a previous run's
        self._recording: set[asyncio.Task[None]] = set()
        self._repaired_ranges: list[tuple[datetime, datetime]] = []
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
        self.repairs = RepairQueue(calendar, on_mark=self._on_mark)
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
            # A minute's signals are committed before the rest of its work runs (engine.process_many).
            after_signals=writer.urgent_written,
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
            on_repaired=self._repaired,
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
                await self.consumer.settle()
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
        writer_task = self.writer.start()
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
                    self._resumed_from = minute_of(resume_from)
                tasks = [
                    asyncio.create_task(self.consumer.run(feed.queue), name="live-consumer"),
                    asyncio.create_task(self.run_clock(), name="live-clock"),
                    asyncio.create_task(self.repairer.run(), name="live-repair"),
                ]
                if self.health is not None:
                    tasks.append(asyncio.create_task(self.health.run(self), name="live-health"))
                await self._until_done(feed, tasks, writer_task)
            # Feed closed: drain what it queued, finish repairs.
            await self._finish(feed)
        finally:
            await self._cancel(tasks)
            self.consumer.settle_now()  # a task cancelled while awaiting a commit left its minute's rest
            if await self.writer.close(timeout_s=15.0):
                await self._close_repaired()  # their bars are in the database now
        self._final_report(began)
        if self.fatal is not None and not isinstance(self.fatal, asyncio.CancelledError):
            raise self.fatal
        return self.report

    async def _until_done(
        self, feed: MarketFeed, tasks: list[asyncio.Task[None]], writer_task: asyncio.Task[None]
    ) -> None:
        run_task = feed.start()
        stop_task = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait(
            [stop_task, run_task, writer_task, *tasks], return_when=asyncio.FIRST_COMPLETED
        )
        for t in done:
            if t is stop_task:
                continue
            failure: BaseException | None = t.exception()
            if t is writer_task:
                # The writer is supervised: rows accepted after its death would never be stored, so a
                # dead writer ends the session at once, loudly (exit code 1), never silently.
                cause = failure or WriterStopped("its task ended")
                failure = WriterStopped(
                    f"the live database writer stopped ({type(cause).__name__}: {cause}); "
                    "the session ends so that no accepted row is silently lost"
                )
                failure.__cause__ = cause
                logger.opt(exception=cause).error("live: {}", failure)
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
        """Close what ended, finish the repairs that can be, and never store a bar that is not right.

        After a fatal feed error the bars still forming (and every minute from the oldest of them, or
        from an open disconnect, to the end) are incomplete: they become a repair window instead of
        being closed on the clock. Windows still pending at the end are recorded durably
        (``repair_windows``) BEFORE the bars behind them are dropped; the next run repairs them
        through REST first. Bars before the first pending window are stored as usual.
        """
        queue = feed.queue
        batch = []
        while not queue.empty():
            batch.append(queue.get_nowait())
        if batch:
            self.consumer.consume_batch(batch)
        now = self.clock.now()
        if self.fatal is None:
            self.consumer.close_due(min(now, self.until + self.grace))
        else:
            self._mark_incomplete(now)
        self.consumer.settle_now()  # the last minutes' rest (candles, roll-ups, features) is queued
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
            await self._repaired(s, e)
        repairs.clip(minute_of(self.until) - MINUTE)
        if self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)
        await self._record_pending()
        dropped = repairs.release_all(self.engine, self.until)
        if dropped:
            logger.warning(
                "live: {} bar(s) behind unrepaired windows not stored; the next run repairs them", dropped
            )

    def _mark_incomplete(self, now: datetime) -> None:
        """The feed died: the minutes from the oldest forming bar (or open disconnect) on are unknown."""
        self.consumer.mark_suspects(now)
        forming = [self.consumer.builder.open_bar_time(token) for token in self.tokens]
        starts = [t for t in forming if t is not None]
        start = min(starts) if starts else minute_of(now)
        self.repairs.mark(start, min(now, self.until), "session ended on a fatal feed error")

    async def _record_pending(self) -> None:
        """Record the windows this run could not repair (before their bars are dropped)."""
        reason = f"not repaired before the session ended ({self.report.ended_by or 'stop'})"
        for s, e in self.repairs.windows:
            logger.warning(
                "live: repair window {:%H:%M}..{:%H:%M} left open; the next run repairs it first", s, e
            )
            if self.window_store is None:
                continue
            try:
                await self.window_store.record(self.day, s, e, reason)
            except Exception as exc:  # the database is down: the next run's hole check still finds it
                logger.error("live: cannot record repair window {}..{}: {}", s, e, exc)

    def _on_mark(self, start: datetime, end: datetime, reason: str) -> None:
        """A repair window was added: record it at once, so even a ``kill -9`` leaves it known.

        The start-up gap is not recorded: the next run derives it from the stored bars again.
        """
        if self.window_store is None or reason == "start-up gap":
            return
        task = asyncio.get_running_loop().create_task(self._record(start, end, reason))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _record(self, start: datetime, end: datetime, reason: str) -> None:
        if self.window_store is None:
            return
        try:
            await self.window_store.record(self.day, start, end, reason)
        except Exception as exc:  # the database is down: the next run's hole check still finds it
            logger.error("live: cannot record repair window {}..{}: {}", start, end, exc)

    async def _repaired(self, start: datetime, end: datetime) -> None:
        """``[start, end]`` was backfilled; once it is the start-up gap, close earlier runs' windows.

        The restart resumed before every window a previous run recorded (``bootstrap.live`` cuts the
        history there), so once the start-up gap is repaired each of their minutes is either a REST bar
        or a bar of this run's live feed: they are superseded, whatever their end. This run's own
        windows are closed only at the end, once the writer has stored the repaired bars.
        """
        self._repaired_ranges.append((start, end))
        resumed = self._resumed_from
        if self.window_store is None or resumed is None or start > resumed:
            return
        self._resumed_from = None
        try:
            n = await self.window_store.mark_repaired(
                self.day, start, self.until + timedelta(days=1), recorded_before=self._started_at
            )
        except Exception as exc:  # recorded windows stay open: the next run repairs them again (idempotent)
            logger.warning("live: cannot mark repair windows {}..{} repaired: {}", start, end, exc)
            return
        if n:
            logger.info("live: {} repair window(s) left by an earlier run repaired", n)

    async def _close_repaired(self) -> None:
        """Everything is written: close this run's recorded windows that a repair covered."""
        if self.window_store is None:
            return
        for start, end in self._repaired_ranges:
            try:
                await self.window_store.mark_repaired(self.day, start, end)
            except Exception as exc:
                logger.warning("live: cannot mark repair windows {}..{} repaired: {}", start, end, exc)
                return

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
        names = ("ticks", "candles", "features", "signals")
        r.dropped_rows = {n: self.writer.stats(n).dropped for n in names if self.writer.stats(n).dropped}
        r.spill_files_rejected = sum(self.writer.stats(n).rejected_files for n in names)
        r.repair_windows_left = len(self.repairs.windows)
        latency = self.latencies.summary()
        r.latency_ms_p50, r.latency_ms_p99 = latency.p50, latency.p99
        r.seconds = round(self.clock.monotonic() - began, 2)

    def _breaker_changed(self, name: str, state: str) -> None:
        self.hooks.on_circuit_breaker(name, state)
        if self.alerts is not None and state == "open":
            self.alerts.notify("critical", f"breaker_{name}", f"circuit breaker {name} open")
