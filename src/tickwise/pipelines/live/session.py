"""One live session: ticker -> tick queue -> consumer -> validator -> candles -> engine -> writer.

Flow and policies:

* **Queue / backpressure.** The ticker runs with ``overflow="block"``: when the bounded tick queue is
  full the receive loop waits (TCP backpressure to the server) instead of dropping, so no tick is ever
  dropped silently; the queue depth is published as a metric.
* **Consumer.** One task drains the queue in batches: validation (rejections counted by reason),
  candle building (bars close on the next minute's tick or on the clock after a grace period), then the
  engine per closed bar. Feature/model work is CPU-bound, so more asyncio workers would not add
  throughput; ordering per instrument is what matters and one consumer guarantees it.
* **No lost candles.** Every span where the feed cannot be trusted becomes a *repair window* of
  minutes: a disconnect (the ticker's :class:`DisconnectInterval`), the start-up gap between the last
  stored candle and the first live tick, a feed silence, a decode error, an out-of-order or late tick.
  WebSocket bars inside a window are discarded and bars after it are held; once the broker's REST API
  has the window's minutes complete, they are fetched and processed in order, then the held bars, so
  the affected instruments produce signals again only after the backfill. A window that reaches back
  over bars already processed rewinds the instrument's stream and replays corrected bars
  (:meth:`LiveEngine.rewind`).
* **End.** At ``until`` (clock time or session close), on SIGINT/SIGTERM or on a fatal feed error:
  close bars that ended, finish pending repairs, flush the writer, close the ticker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from tickwise.adapters.kite.ticker import DisconnectInterval, KiteTicker
from tickwise.core.candles import CandleBuilder, ClosedCandle
from tickwise.core.tick_validator import Rejection, TickValidator
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import BrokerError
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.engine import LiveEngine, candle_bar, same_bar
from tickwise.pipelines.live.writer import BufferedWriter

MINUTE = timedelta(minutes=1)
STALL_S = 0.2  # a clock wake-up this late (real seconds) means our own event loop was blocked
CATCH_UP_S = 0.25  # after such a stall, real seconds for the queued feed to come in before clock closes
_SUSPECT = (Rejection.OUT_OF_ORDER, Rejection.VOLUME_DECREASED)


def minute_of(t: datetime) -> datetime:
    t = t.astimezone(IST)
    return t.replace(second=0, microsecond=0)


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
        broker: Any,
        engine: LiveEngine,
        writer: BufferedWriter,
        tokens: Sequence[int],
        day: Any,
        until: datetime,
        calendar: SessionCalendar,
        hooks: Any,
        grace_s: float = 2.0,
        speed: float = 1.0,
        spike_band: float = 0.03,
        silence_s: float = 1.5,
        alerts: Any = None,
        stop: asyncio.Event | None = None,
        health: Any = None,
    ) -> None:
        self.broker = broker
        self.engine = engine
        self.writer = writer
        self.tokens = list(tokens)
        self.day = day
        self.until = until
        self.calendar = calendar
        self.hooks = hooks
        self.speed = max(speed, 1e-9)
        # The grace is real waiting time; with an accelerated clock it spans more simulated seconds.
        self.grace = timedelta(seconds=grace_s * max(1.0, speed))
        self.silence_s = silence_s
        # Margin after a (re)connect: the server starts streaming at the instant it handles the replayed
        # subscription, a round trip after the handshake we time-stamp; ticks before that instant (but
        # the last-value-cache packet) never come, so the window must reach past it. One real second
        # covers the round trip on a loaded machine; the simulator itself skips nothing after the LVC
        # packet (tests/integration/live/test_simulator_feed_continuity.py).
        self.settle = timedelta(seconds=max(5.0, 1.0 * speed))
        self.alerts = alerts
        self.stop = stop or asyncio.Event()
        self.health = health
        self.validator = TickValidator(calendar, spike_band, session_day=day)
        self.builder = CandleBuilder(Timeframe.M1, calendar, self.grace.total_seconds())
        self.rest_breaker = CircuitBreaker("broker", cooldown_s=5.0, on_change=self._breaker_changed)
        self.windows: list[list[datetime]] = []  # merged [start, end] minute ranges to repair
        self.held: dict[int, list[tuple[dict[str, Any], float]]] = {}
        self.report = SessionReport(day=str(day), until=until.isoformat())
        self.ticker: KiteTicker | None = None
        self._repair_wake = asyncio.Event()
        self._last_decode_errors = 0
        self._last_feed_count = 0
        self._last_feed_real = time.monotonic()
        self._last_feed_sim: datetime | None = None
        # Our own stalls (CPU-bound work blocking this event loop): frames wait in the socket meanwhile,
        # so that time is neither feed silence nor a reason to close bars on the clock. ``clock`` wakes
        # every 50 ms; a late wake-up is time the loop was blocked.
        self._clock_beat = time.monotonic()  # when the clock task last got the loop (or stalls were counted)
        self._own_stall = 0.0  # seconds of own stall since the last feed activity
        self._catch_up_until = 0.0  # after a stall, let the queued feed in before closing bars on the clock
        self._last_tick_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.fatal: BaseException | None = None

    # -- windows -----------------------------------------------------------------------------------
    def mark(self, start: datetime, end: datetime, reason: str) -> None:
        """Add the minutes ``[minute(start), minute(end)]`` to the repair windows (merged)."""
        s, e = minute_of(start), minute_of(end)
        if e < s:
            return
        first = self._first_session_minute(s)
        if first is None or first > e:
            return  # no session minute in the window: nothing to repair
        s = first
        merged = [s, e]
        rest = []
        for w in self.windows:
            if w[0] <= merged[1] + MINUTE and merged[0] <= w[1] + MINUTE:
                merged = [min(w[0], merged[0]), max(w[1], merged[1])]
            else:
                rest.append(w)
        rest.append(merged)
        rest.sort()
        if rest == self.windows:
            return
        self.windows = rest
        logger.info("live: repair window {}..{} ({})", s.strftime("%H:%M"), e.strftime("%H:%M"), reason)
        self._repair_wake.set()

    def _first_session_minute(self, s: datetime) -> datetime | None:
        day = s.date()
        for _ in range(30):
            if self.calendar.is_trading_day(day):
                open_, close = self.calendar.session_open(day), self.calendar.session_close(day)
                if s < close:
                    return max(s, open_)
            day = self.calendar.next_trading_day(day)
            s = self.calendar.session_open(day)
        return None

    # -- gate ----------------------------------------------------------------------------------------
    def on_closed(self, closed: ClosedCandle, closed_at: float) -> None:
        """A bar closed by the builder: process it now, or hold it behind a pending repair window."""
        candle = closed.candle
        if candle.time + MINUTE > self.until:
            return  # the bar ends after --until: outside this run
        bar = candle_bar(candle, closed.obi_5)
        self._hook(
            "on_candle_closed", "1m", max(0.0, (self.broker.now() - (candle.time + MINUTE)).total_seconds())
        )
        if self.windows and candle.time >= self.windows[0][0]:
            self.held.setdefault(candle.instrument_token, []).append((bar, closed_at))
            return
        try:
            self.engine.process(candle.instrument_token, bar, closed_at)
        except Exception as exc:  # one bad bar must not cost the rest of the tick batch
            self.engine.errors += 1
            logger.exception(
                "live: processing the {} bar of {} failed: {}", candle.time, candle.instrument_token, exc
            )
            # Recompute it (and what follows) from REST: the repair rewinds the instrument.
            self.mark(candle.time, candle.time, "bar processing error")

    # -- tasks ---------------------------------------------------------------------------------------
    async def consume(self, queue: asyncio.Queue[Tick]) -> None:
        while True:
            first = await queue.get()
            batch = [first]
            while len(batch) < 5000:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                self._consume_batch(batch)
            except Exception as exc:  # bad input must never stop the pipeline
                self.engine.errors += 1
                logger.exception("live: failed to process a tick batch: {}", exc)
            self._hook("on_queue_depth", queue.qsize())

    def _consume_batch(self, batch: list[Tick]) -> None:
        now = self.broker.now()
        closed_at = time.time()
        # A silence or disconnect that just ended must be marked before its bars are processed.
        self._watch_silence(now)
        self._watch_disconnect(now)
        accepted = []
        validator, builder = self.validator, self.builder
        # The session subscribes in full mode; a packet in a lower mode is the snapshot the server sends
        # between the ``subscribe`` and the ``mode full`` message of every (re)connect: it carries no
        # timestamp and the same snapshot follows in full mode, so it is skipped (and counted), not
        # rejected as bad data.
        full = [t for t in batch if t.mode == "full"]
        if len(full) != len(batch):
            self.report.mode_transition_ticks += len(batch) - len(full)
            batch = full
        self.report.ticks += len(batch)
        for tick in batch:
            reason = validator.check(tick)
            if reason is not None:
                self._hook("on_tick_rejected", reason.value)
                if reason in _SUSPECT and tick.exchange_timestamp is not None:
                    self.mark(tick.exchange_timestamp, now, reason.value)
                continue
            accepted.append(tick)
            self._last_tick_at[tick.instrument_token] = closed_at
            late = builder.late_ticks
            for closed in builder.on_tick(tick):
                self.on_closed(closed, closed_at)
            if builder.late_ticks != late and tick.exchange_timestamp is not None:
                self.mark(tick.exchange_timestamp, now, "late tick")
        self.report.ticks_accepted += len(accepted)
        if accepted:
            self.writer.put("ticks", accepted)
            for tick in accepted[-1:]:
                self._hook("on_tick_received", tick.instrument_token, closed_at)
        self._check_decode(now)

    def _check_decode(self, now: datetime) -> None:
        if self.ticker is None:
            return
        errors = self.ticker.stats.decode_errors + self.ticker.stats.handler_errors
        if errors != self._last_decode_errors:
            self._last_decode_errors = errors
            # The damaged frame carried recent ticks: distrust the last minute and the current one.
            self.mark(now - MINUTE, now, "decode error")

    async def clock(self) -> None:
        """Close bars on the clock, watch for feed silence, stop at ``until``."""
        self._clock_beat = time.monotonic()
        while not self.stop.is_set():
            await asyncio.sleep(0.05)
            real = time.monotonic()
            lag = real - self._clock_beat - 0.05
            self._clock_beat = real
            if lag > STALL_S:
                self._own_stall += lag
                self._catch_up_until = real + CATCH_UP_S
            now = self.broker.now()
            closed_at = time.time()
            if real >= self._catch_up_until:
                for closed in self.builder.on_clock(min(now, self.until + self.grace)):
                    self.on_closed(closed, closed_at)
            self._watch_silence(now)
            self._watch_disconnect(now)
            if now >= self.until + self.grace:
                self.report.ended_by = (
                    "until" if self.until < self.calendar.session_close(self.day) else "session end"
                )
                self.stop.set()

    def _watch_silence(self, now: datetime) -> None:
        t = self.ticker
        if t is None:
            return
        count = t.stats.frames + t.stats.heartbeats
        real = time.monotonic()
        if count != self._last_feed_count:
            # Silence is what remains of the wait once our own stalls (finished or ongoing) are deducted.
            own = self._own_stall + max(0.0, real - self._clock_beat - 0.05)
            self._own_stall, self._clock_beat = 0.0, real
            if self._last_feed_sim is not None and real - self._last_feed_real - own > self.silence_s:
                self.mark(self._last_feed_sim, now, "feed silence")
            self._last_feed_count = count
            self._last_feed_real = real
            self._last_feed_sim = now

    def _watch_disconnect(self, now: datetime) -> None:
        # While a connection is down, hold every bar from the disconnect on (the gap is closed and
        # repaired once the ticker reconnects: on_gap).
        t = self.ticker
        if t is None:
            return
        for gap in t.gaps[-3:]:
            if gap.reconnected_at is None:
                self.mark(gap.disconnected_at, now, "disconnected")

    def on_gap(self, gap: DisconnectInterval) -> None:
        self.report.gaps += 1
        self._hook("on_reconnect")
        end = (gap.reconnected_at or self.broker.now()) + self.settle
        self.mark(gap.disconnected_at, end, f"disconnect ({gap.reason})")
        if self.alerts is not None:
            self.alerts.notify(
                "warning",
                "feed_gap",
                f"feed disconnected {gap.disconnected_at:%H:%M:%S}-{end:%H:%M:%S}: {gap.reason}",
            )

    async def repair(self) -> None:
        """Backfill repair windows through REST, oldest first, then release the held bars."""
        while True:
            if not self.windows:
                self._repair_wake.clear()
                await self._repair_wake.wait()
                continue
            s, e = self.windows[0]
            # The open gap (still disconnected) keeps growing: wait for a reconnect before fetching.
            if self.ticker is not None and any(g.reconnected_at is None for g in self.ticker.gaps[-3:]):
                await asyncio.sleep(0.05)
                continue
            ready_at = e + MINUTE + timedelta(seconds=1)
            while self.broker.now() < ready_at:  # noqa: ASYNC110 - waiting on the market clock, not an event
                await asyncio.sleep(
                    min(0.2, max(0.01, (ready_at - self.broker.now()).total_seconds() / self.speed))
                )
            fetched = await self._fetch(s, e)
            try:
                self._apply(s, e, fetched)
            except Exception as exc:  # never let a repair stop the pipeline
                self.engine.errors += 1
                logger.exception("live: repair of {}..{} failed: {}", s, e, exc)
                self.windows = [w for w in self.windows if w[0] > e]

    async def _fetch(self, s: datetime, e: datetime) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for token in self.tokens:
            attempt = 0
            while True:
                if not self.rest_breaker.allow():
                    await asyncio.sleep(0.5)
                    continue
                try:
                    candles = await self.broker.rest.historical(token, Timeframe.M1, s, e)
                except Exception as exc:
                    self.rest_breaker.failure()
                    attempt += 1
                    if attempt in (1, 5) or attempt % 20 == 0:
                        logger.warning("live: REST backfill of {} failed ({}): {}", token, attempt, exc)
                    await asyncio.sleep(min(10.0, 0.25 * 2**attempt))
                    continue
                self.rest_breaker.success()
                break
            # Only bars inside the window and ending by --until belong to this run.
            out[token] = [
                candle_bar(c) for c in candles if s <= c.time <= e and c.time + MINUTE <= self.until
            ]
        self._hook("on_backfilled", "1m", sum(len(v) for v in out.values()))
        return out

    def _apply(self, s: datetime, e: datetime, fetched: dict[int, list[dict[str, Any]]]) -> None:
        # Remove [s, e] from the windows (a window extended while fetching keeps its later part).
        remaining = []
        for w in self.windows:
            if w[1] < s or w[0] > e:
                remaining.append(w)
            elif w[1] > e:
                remaining.append([e + MINUTE, w[1]])
        remaining.sort()
        self.windows = remaining
        next_start = remaining[0][0] if remaining else None
        now_wall = time.time()
        self.report.repairs += 1
        for token in self.tokens:
            rest_bars = fetched.get(token, [])
            held = self.held.get(token, [])
            keep = []
            release: list[tuple[dict[str, Any], float]] = []
            for bar, at in held:
                if s <= bar["time"] <= e:
                    continue  # replaced by the REST bar
                if next_start is not None and bar["time"] >= next_start:
                    keep.append((bar, at))
                else:
                    release.append((bar, at))
            self.held[token] = keep
            state = self.engine.states.get(token)
            done = {b["time"]: b for b in state.session} if state is not None else {}
            last = state.last_time if state is not None else None
            # Bars already processed inside the window that REST contradicts: rewind from the first.
            first_bad = None
            for b in rest_bars:
                if last is not None and b["time"] <= last:
                    mine = done.get(b["time"])
                    if mine is None or not same_bar(mine, b):
                        first_bad = b["time"]
                        break
            if first_bad is None and last is not None and state is not None:
                rest_times = {b["time"] for b in rest_bars}
                extra = [t for t in done if s <= t <= e and t not in rest_times]
                if extra:
                    first_bad = min(extra)
            if first_bad is not None and state is not None:
                later = [b for b in state.session if b["time"] > e]
                seq = [b for b in rest_bars if b["time"] >= first_bad]
                seq += later + [bar for bar, _ in release]
                seq.sort(key=lambda b: b["time"])
                self.report.repaired_bars += len([b for b in rest_bars if b["time"] >= first_bad])
                self.engine.rewind(token, seq, now_wall)
                continue
            seq2 = [(b, now_wall) for b in rest_bars if last is None or b["time"] > last]
            self.report.repaired_bars += len(seq2)
            seq2 += release
            seq2.sort(key=lambda p: p[0]["time"])
            for bar, at in seq2:
                self.engine.process(token, bar, at)

    # -- run -----------------------------------------------------------------------------------------
    async def run(self, resume_from: datetime | None) -> SessionReport:
        began = time.monotonic()
        self.report.started_at = self.broker.now().isoformat()
        self.writer.load_spilled()
        self.writer.start()
        ticker = self.broker.ticker(overflow="block", on_gap=self.on_gap)
        self.ticker = ticker
        tasks: list[asyncio.Task[Any]] = []
        try:
            async with ticker:
                await ticker.subscribe(self.tokens, "full")
                try:
                    await ticker.wait_connected(timeout_s=30.0)
                    self._hook("on_feed_connected", True)
                except (TimeoutError, BrokerError) as exc:
                    logger.warning(
                        "live: feed not connected yet ({}); continuing, the ticker keeps trying", exc
                    )
                # Ticks before the server handled the subscription never come (but the LVC packet):
                # the repair window reaches past the handshake by ``settle``.
                connected = self.broker.now() + self.settle
                if resume_from is not None:
                    self.mark(resume_from, connected, "start-up gap")
                tasks = [
                    asyncio.create_task(self.consume(ticker.queue), name="live-consumer"),
                    asyncio.create_task(self.clock(), name="live-clock"),
                    asyncio.create_task(self.repair(), name="live-repair"),
                ]
                if self.health is not None:
                    tasks.append(asyncio.create_task(self.health.run(self), name="live-health"))
                run_task = ticker.start()
                stop_task = asyncio.create_task(self.stop.wait())
                done, _ = await asyncio.wait(
                    [stop_task, run_task, *tasks], return_when=asyncio.FIRST_COMPLETED
                )
                for t in done:
                    if t is stop_task:
                        continue
                    failure: BaseException | None = t.exception()
                    if failure is None and t is run_task:
                        failure = ticker.error or BrokerError(f"the ticker stopped ({ticker.state.value})")
                    if failure is not None:
                        self.fatal = failure
                        self.report.ended_by = f"error: {failure}"
                stop_task.cancel()
                if not self.report.ended_by:
                    self.report.ended_by = "signal"
                await self._cancel(tasks)
            # Ticker closed: drain what it queued, finish repairs.
            await self._finish(ticker)
        finally:
            await self._cancel(tasks)
            self.writer_ok = await self.writer.close(timeout_s=15.0)
        self._final_report(began)
        if self.fatal is not None and not isinstance(self.fatal, asyncio.CancelledError):
            raise self.fatal
        return self.report

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish(self, ticker: KiteTicker) -> None:
        queue = ticker.queue
        batch = []
        while not queue.empty():
            batch.append(queue.get_nowait())
        if batch:
            self._consume_batch(batch)
        end = min(self.broker.now(), self.until + self.grace)
        for closed in self.builder.on_clock(end):
            self.on_closed(closed, time.time())
        # Bars still forming are incomplete: not stored (a restart backfills them through REST).
        deadline = time.monotonic() + 60.0
        while self.windows and time.monotonic() < deadline and self.fatal is None:
            s, e = self.windows[0]
            ready_at = e + MINUTE + timedelta(seconds=1)
            if self.broker.now() < ready_at:
                if self.broker.now() >= self.until + self.grace and e >= minute_of(self.until):
                    # Minutes at or after --until are outside this run.
                    self.windows[0][1] = minute_of(self.until) - MINUTE
                    if self.windows[0][1] < self.windows[0][0]:
                        self.windows.pop(0)
                    continue
                await asyncio.sleep(0.05)
                continue
            self._apply(s, e, await self._fetch(s, e))
        for token, held in self.held.items():
            for bar, at in sorted(held, key=lambda p: p[0]["time"]):
                if bar["time"] < self.until:
                    self.engine.process(token, bar, at)
        self.held.clear()

    def _final_report(self, began: float) -> None:
        r = self.report
        r.rejections = dict(self.validator.rejections)
        r.bars = self.engine.bars
        r.signals = self.engine.signals
        r.rewinds = self.engine.rewinds
        r.late_ticks = self.builder.late_ticks
        r.dropped_ticks = self.ticker.stats.dropped if self.ticker is not None else 0
        r.written = {n: self.writer.stats(n).written for n in ("ticks", "candles", "features", "signals")}
        r.spilled_files_left = self.writer.spilled_files()
        if self.latencies:
            lat = sorted(self.latencies)
            r.latency_ms_p50 = round(lat[len(lat) // 2], 3)
            r.latency_ms_p99 = round(lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)], 3)
        r.seconds = round(time.monotonic() - began, 2)

    # -- helpers -------------------------------------------------------------------------------------
    def _breaker_changed(self, name: str, state: str) -> None:
        self._hook("on_circuit_breaker", name, state)
        if self.alerts is not None and state == "open":
            self.alerts.notify("critical", f"breaker_{name}", f"circuit breaker {name} open")

    def _hook(self, name: str, *args: Any) -> None:
        with contextlib.suppress(Exception):
            getattr(self.hooks, name)(*args)


def signal_writer(signals_repo: Any, hooks: Any, latencies: list[float]) -> Callable[[list[Any]], Any]:
    """The ``signals`` sink: stamps latency (bar closed -> written) on each row, then upserts."""
    import dataclasses

    async def write(rows: list[Any]) -> int:
        now = time.time()
        signals = [
            dataclasses.replace(p.signal, latency_ms=round((now - p.closed_at) * 1000.0, 3)) for p in rows
        ]
        n = int(await signals_repo.add_many(signals))
        done = time.time()
        for p in rows:
            lat = done - p.closed_at
            latencies.append(lat * 1000.0)
            with contextlib.suppress(Exception):
                hooks.on_signal(p.signal.direction, lat)
        return n

    return write
