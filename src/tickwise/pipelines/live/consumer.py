"""The tick consumer: a batch of ticks -> validation -> 1m bars -> the engine (or held for repair).

One task drains the feed's queue in batches (:meth:`TickConsumer.run`); each batch goes through
:meth:`TickConsumer.consume_batch`, the public per-batch step ``tickwise bench live`` measures:

* packets in a lower mode than ``full`` are the snapshot the server sends between the ``subscribe``
  and the ``mode full`` message of every (re)connect: no timestamp, and the same snapshot follows in
  full mode, so they are skipped (and counted), not rejected as bad data;
* the :class:`~tickwise.core.tick_validator.TickValidator` rejects bad ticks (counted by reason); an
  out-of-order tick or a volume that went down marks its minutes for repair, and so does a late tick;
* the :class:`~tickwise.core.candles.CandleBuilder` closes bars on the next minute's tick; with a
  ``feed_close_margin_s``, every bar of a minute closes once ticks stamped in a later minute have
  arrived and that margin (real seconds, for ticks still in flight) has passed, so an instrument that
  did not tick again is not held back to the clock's grace; failing both, :meth:`close_due` closes on
  the clock after the grace period. Each closed bar goes to the engine, or waits behind a pending
  repair window. A tick that arrives for a bar the feed rule closed is late: counted
  (``late_after_feed_close``, the ``late_after_feed_close`` rejection reason) and its minute repaired
  from REST like any late tick, so closing early never makes a stored candle wrong.

Feature/model work is CPU-bound, so more asyncio workers would not add throughput; ordering per
instrument is what matters, and one consumer guarantees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from loguru import logger

from tickwise.core.candles import CandleBuilder, ClosedBars
from tickwise.core.tick_validator import Rejection, TickValidator
from tickwise.domain.bar import Bar
from tickwise.domain.tick import Tick
from tickwise.pipelines.live.batches import bar_batch
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.planner import MINUTE
from tickwise.pipelines.live.repair import RepairQueue
from tickwise.ports.clock import Clock
from tickwise.ports.hooks import PipelineHooks

BATCH = 5000  # ticks per consumer step at most
# A tick stamped further ahead of the market clock than this does not move the feed's minute: one bad
# timestamp must not close every instrument's bar early.
FEED_AHEAD = timedelta(seconds=2)
_SUSPECT = (Rejection.OUT_OF_ORDER, Rejection.VOLUME_DECREASED)


class TickConsumer:
    """Validates and builds bars from tick batches and gates each closed bar (see the module doc)."""

    def __init__(
        self,
        *,
        engine: LiveEngine,
        validator: TickValidator,
        builder: CandleBuilder,
        repairs: RepairQueue,
        watch: FeedWatch,
        put: Callable[[str, Sequence[object]], None],
        clock: Clock,
        until: datetime,
        hooks: PipelineHooks,
        wall: Callable[[], float] = time.time,
        feed_close_margin_s: float | None = None,
        token_map: Mapping[int, int] | None = None,
        after_signals: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if feed_close_margin_s is not None and feed_close_margin_s < 0:
            raise ValueError(f"feed_close_margin_s must be >= 0, got {feed_close_margin_s}")
        self.engine = engine
        self.validator = validator
        self.builder = builder
        self.repairs = repairs
        self.watch = watch
        self.put = put
        self.clock = clock
        self.until = until
        self.hooks = hooks
        self.wall = wall
        # Contract token -> continuous series token (live futures, pipelines/live/contracts.py): the
        # feed carries the session contract's ticks, stored under the continuous token.
        self.token_map: Mapping[int, int] = token_map or {}
        # Optional observer of each batch's accepted ticks, called after their bars went through the
        # engine (paper trading); it must only enqueue, never block.
        self.tick_observer: Callable[[Sequence[Tick]], None] | None = None
        self.ticks = 0
        self.ticks_accepted = 0
        self.mode_transition_ticks = 0
        self.errors = 0
        self._last_tick_at: dict[int, float] = {}
        # Exchange time of the newest tick of the batches already consumed: a frame damaged since
        # then was sent after them, so its minutes start there at the earliest.
        self._seen_until: datetime | None = None
        # Bars closed in the current step, not yet processed: a list, or a feed close's columns alone.
        self._closed: Sequence[Bar] = []
        self.feed_close_margin_s = feed_close_margin_s
        # With after_signals (the writer's urgent_written), the engine defers the rest of each minute
        # (candles, roll-ups, feature rows, longer timeframes) until that minute's signals are written:
        # :meth:`settle` awaits it, then runs the rest. Without it the engine finishes each minute at once.
        self.after_signals = after_signals
        self._unsettled: Sequence[Bar] = []  # bars whose minute's rest is deferred (repaired if it fails)
        self._unsettled_batch: str | None = None  # their bar batch: the rest's rows and logs carry it
        self._lags: list[float] = []  # candle-close lags of closed bars, not yet reported
        self.late_after_feed_close = 0
        # The newest minute start the feed's ticks have reached, when (real time) it was first seen,
        # and the last boundary the feed rule closed bars through.
        self._feed_minute: datetime | None = None
        self._feed_minute_seen_at = 0.0
        self._feed_closed_through: datetime | None = None

    async def run(self, queue: asyncio.Queue[Tick]) -> None:
        """Drain ``queue`` for ever in batches (cancelled at the end of the session)."""
        while True:
            first = await queue.get()
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                self.consume_batch(batch)
            except Exception as exc:  # bad input must never stop the pipeline
                self.errors += 1
                logger.exception("live: failed to process a tick batch: {}", exc)
            await self.settle()
            self.hooks.on_queue_depth(queue.qsize())

    async def settle(self) -> None:
        """Let the writer commit the signals of the bars just processed, then run the rest of their
        minute (:meth:`LiveEngine.process_many` with ``defer``). A no-op when nothing is deferred."""
        if not self.engine.deferred:
            self._report_lags()
            return
        if self.after_signals is not None:
            await self.after_signals()
        self.settle_now()

    def settle_now(self, *, report_lags: bool = True) -> None:
        """Run the deferred rest of the processed minutes now (before more bars, and at the end)."""
        if report_lags:
            self._report_lags()
        if not self.engine.deferred:
            return
        bars, self._unsettled = self._unsettled, []
        batch, self._unsettled_batch = self._unsettled_batch, None
        with bar_batch(batch):  # the same bar batch as the minute's first part
            try:
                self.engine.settle()
            except Exception as exc:  # like a failed minute: its bars are recomputed from REST
                self.errors += 1
                logger.exception("live: finishing {} processed bars failed: {}", len(bars), exc)
                for bar in bars:
                    self.repairs.mark(bar.time, bar.time, "bar processing error")

    def consume_batch(self, batch: Sequence[Tick]) -> None:
        """One consumer step over ``batch`` (ticks in arrival order)."""
        now = self.clock.now()
        closed_at = self.wall()
        # A silence or disconnect that just ended must be marked before its bars are processed.
        self.mark_suspects(now)
        full = [t for t in batch if t.mode == "full"]
        if self.token_map:
            tm = self.token_map
            full = [
                t
                if t.instrument_token not in tm
                else dataclasses.replace(t, instrument_token=tm[t.instrument_token])
                for t in full
            ]
        if len(full) != len(batch):
            self.mode_transition_ticks += len(batch) - len(full)
        self.ticks += len(full)
        accepted = []
        validator, builder, repairs = self.validator, self.builder, self.repairs
        for tick in full:
            reason = validator.check(tick)
            if reason is not None:
                self.hooks.on_tick_rejected(reason.value)
                if reason in _SUSPECT and tick.exchange_timestamp is not None:
                    repairs.mark(tick.exchange_timestamp, now, reason.value)
                continue
            accepted.append(tick)
            self._last_tick_at[tick.instrument_token] = closed_at
            late = builder.late_ticks
            for bar in builder.on_tick(tick):
                self.on_closed(bar, closed_at)
            if builder.late_ticks != late and tick.exchange_timestamp is not None:
                repairs.mark(tick.exchange_timestamp, now, "late tick")
                if builder.late_after_feed_close != self.late_after_feed_close:
                    self.late_after_feed_close = builder.late_after_feed_close
                    self.hooks.on_tick_rejected("late_after_feed_close")
        self._process_closed(closed_at)
        self.ticks_accepted += len(accepted)
        if accepted:
            self.put("ticks", accepted)
            if self.tick_observer is not None:
                self.tick_observer(accepted)
            self.hooks.on_tick_received(accepted[-1].instrument_token, closed_at)
        damaged = self.watch.decode_errors(now)
        if damaged is not None:
            # A consumer running behind the feed must not leave the damaged frame's minute out of the
            # window: reach back to where the previous batches ended, if that is earlier.
            start = damaged.start if self._seen_until is None else min(damaged.start, self._seen_until)
            repairs.mark(start, damaged.end, damaged.reason)
        stamps = [t.exchange_timestamp for t in accepted if t.exchange_timestamp is not None]
        if stamps:
            newest = max(stamps)
            self._seen_until = newest if self._seen_until is None else max(self._seen_until, newest)
            if self.feed_close_margin_s is not None:
                self._feed_reached(min(newest, now + FEED_AHEAD), closed_at)
                self.close_on_feed(self.wall())

    def _feed_reached(self, stamp: datetime, at: float) -> None:
        minute = stamp.replace(second=0, microsecond=0)
        if self._feed_minute is None or minute > self._feed_minute:
            self._feed_minute = minute
            self._feed_minute_seen_at = at

    def feed_close_due_at(self) -> float | None:
        """The real instant :meth:`close_on_feed` will close bars at, or None when nothing is pending."""
        margin, minute = self.feed_close_margin_s, self._feed_minute
        if margin is None or minute is None or minute == self._feed_closed_through:
            return None
        return self._feed_minute_seen_at + margin

    def close_on_feed(self, wall_now: float) -> None:
        """Close the bars the feed has moved past, once the in-flight margin has passed (if enabled)."""
        margin, minute = self.feed_close_margin_s, self._feed_minute
        if margin is None or minute is None or minute == self._feed_closed_through:
            return
        if wall_now < self._feed_minute_seen_at + margin:
            return
        self._feed_closed_through = minute
        # The bars as columns: no Bar object is built before their signals (core.candles.ClosedBars).
        self.on_closed_many(self.builder.close_through_columns(minute), wall_now)
        self._process_closed(wall_now)

    def close_due(self, now: datetime) -> None:
        """Close the bars whose end + grace is at or before ``now`` (the clock's part of bar closing)."""
        closed_at = self.wall()
        self.close_on_feed(closed_at)
        self.on_closed_many(self.builder.on_clock(now), closed_at)
        self._process_closed(closed_at)

    def on_closed(self, bar: Bar, closed_at: float) -> None:
        """A bar closed by the builder: process it now, or hold it behind a pending repair window."""
        if bar.time + MINUTE > self.until:
            return  # the bar ends after --until: outside this run
        lag = (self.clock.now() - (bar.time + MINUTE)).total_seconds()
        # Reported after the step's bars went to the engine (_report_lags): a Prometheus observation
        # per bar is about 2.6 ms per 1,000 bars, which must not delay their signals.
        self._lags.append(max(0.0, lag))
        if self.repairs.holds(bar):
            self.repairs.hold(bar, closed_at)
            return
        # Processed with the step's other closed bars (_process_closed), in the order closed.
        closed = self._closed
        if isinstance(closed, list):
            closed.append(bar)
        else:  # a feed close's columns are pending: from here on, a list of the bars
            self._closed = [*closed, bar]

    def on_closed_many(self, bars: Sequence[Bar], closed_at: float) -> None:
        """:meth:`on_closed` of each of ``bars`` (a feed or clock close, in order), with the per-bar
        work done once when they all opened at one instant (a minute's close: up to 3,000 bars, before
        their signals): one bound check, one lag, one repair-window check. Bars given as columns
        (:class:`ClosedBars`) stay columns when they are the step's only closed bars."""
        if not bars:
            return
        if isinstance(bars, ClosedBars):
            first: datetime | None = bars.instant
        else:
            first = bars[0].candle.time
            if any(bar.candle.time != first for bar in bars):
                first = None
        if first is None:
            for bar in bars:
                self.on_closed(bar, closed_at)
            return
        end = first + MINUTE
        if end > self.until:
            return  # the bars end after --until: outside this run
        lag = (self.clock.now() - end).total_seconds()
        self._lags += [max(0.0, lag)] * len(bars)
        # The same instant: all held, or none. Columns show their first bar without building the rest.
        probe = bars.bar_at(0) if isinstance(bars, ClosedBars) else bars[0]
        if self.repairs.holds(probe):
            for bar in bars:
                self.repairs.hold(bar, closed_at)
            return
        if isinstance(bars, ClosedBars) and not self._closed:
            self._closed = bars  # the engine folds them from the columns (LiveEngine.process_many)
        else:
            self._closed = [*self._closed, *bars]  # a list: in the order closed, as objects

    def _process_closed(self, closed_at: float) -> None:
        """The bars closed in this step, through the engine together: one feature step and one
        batched predict for all of them (issue 14)."""
        bars, self._closed = self._closed, []
        if not bars:
            self._report_lags()  # bars held behind a repair window: nothing for the engine now
            return
        # One correlation id per bar batch, on every line logged for it (pipelines/live/batches.py).
        # An earlier minute's rest goes first (same order per table); this step's lags wait for its signals.
        self.settle_now(report_lags=False)
        with bar_batch() as batch:
            if isinstance(bars, ClosedBars) and bars.instant is not None:
                first = last = bars.instant
            else:
                first, last = min(b.time for b in bars), max(b.time for b in bars)
            logger.info(
                "live: {} bar(s) of {:%H:%M}{} closed, to the engine",
                len(bars),
                first,
                "" if first == last else f"..{last:%H:%M}",
            )
            defer = self.after_signals is not None
            try:
                self.engine.process_many(bars, closed_at, defer=defer)
                if defer:
                    self._unsettled, self._unsettled_batch = bars, batch
            except Exception as exc:  # one bad bar must not cost the rest of the tick batch
                self.errors += 1
                logger.exception("live: processing {} closed bars failed: {}", len(bars), exc)
                # Recompute them (and what follows) from REST: the repair rewinds the instruments.
                for bar in bars:
                    self.repairs.mark(bar.time, bar.time, "bar processing error")
        if not defer:
            self._report_lags()

    def _report_lags(self) -> None:
        lags, self._lags = self._lags, []
        for lag in lags:
            self.hooks.on_candle_closed("1m", lag)

    def tick_ages(self, wall_now: float) -> dict[int, float]:
        """Seconds since each instrument's last accepted tick (real time)."""
        return {t: wall_now - at for t, at in self._last_tick_at.items()}

    def mark_suspects(self, now: datetime) -> None:
        """Turn what the feed watch reports (silence that just ended, open disconnects) into windows."""
        for s in self.watch.check(now, self.clock.monotonic()):
            self.repairs.mark(s.start, s.end, s.reason)
