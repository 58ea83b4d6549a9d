"""Paper trading (`tickwise live --paper`): the backtest's trade engine on live signals and ticks.

:class:`PaperTrader` watches the live path without ever holding it up:

* :meth:`PaperTrader.tap` wraps the live engine's ``put`` (what it hands the writer): it forwards every
  row unchanged first, then notes each 1m bar's close, its ``atr_14`` feature and each non-flat signal,
  and turns the signal into a :class:`~tickwise.core.trading.TradeSignal` with the barriers of its bar
  (the labels' levels, exactly as a backtest rebuilds them);
* :meth:`PaperTrader.observe_ticks` receives every tick batch the consumer accepted (the ticks the
  ``ticks`` table stores);
* both only put a message on a **bounded queue** (``put_nowait``; a full queue drops the message and
  counts it), and one background task (:meth:`run`) feeds the engine and records positions and trades
  through :class:`~tickwise.ports.paper.PaperRepository`. A failed write is counted and retried with
  the next one; an engine error is counted and logged. Nothing here can slow or crash the signal path.

Feeding order, the reason paper trades equal a backtest's: a signal of bar t is acted on at the first
tick at or after its ``available_at`` (t + 1 minute). That tick normally closes bar t itself, and the
consumer hands the tick batch over only after the bar (and its signal) went through the engine, so the
signal is queued first. A bar that waits behind a repair window (a feed gap, the start-up backfill)
is decided later than its ticks arrive: the trader therefore *holds* each tick until the bar before
its minute is decided for its instrument (or the tick is ``hold`` older than the newest tick: a minute
without any bar), and releases ticks in arrival order; an instrument that waits keeps only its own
ticks back, the others go on. Paper trading then lags the market by the
repair, but trades exactly what its recorded signals and the stored ticks say (the parity test checks it).

Signals are taken once per bar, and the version taken is history: a bar re-scored after the trader
acted on it (late ticks, a REST repair rewind) is not traded again. When the re-scored signal is the
same it counts as ``duplicate_signals``; when it differs (direction, confidence, size, meta size, or
its barrier levels, the repaired bar's close and ATR) it counts as ``revised_signals`` and is logged.
``signals`` (an upsert) then holds the revision, the model's answer on the corrected bar, while the
trader keeps what it acted on: every signal it takes is recorded exactly as fed to its engine
(``paper_signals``, written with the positions and trades), and a backtest with ``--signals paper``
replays those records, so paper and backtest trade the same signals by construction.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from loguru import logger

from tickwise.core.trading import OpenPosition, PriceEvent, Trade, TradeEngine, TradeSignal, barrier_signal
from tickwise.core.trading.metrics import summarize
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.domain.trade_record import TRADE_RECORD_COLUMNS
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.ports.paper import POSITION_COLUMNS, SIGNAL_COLUMNS, PaperRepository

MINUTE = timedelta(minutes=1)
TRADE_COLUMNS = TRADE_RECORD_COLUMNS

Put = Callable[[str, Sequence[object]], None]


@dataclass(frozen=True, slots=True)
class PaperBarriers:
    """The champion's label spec: its trades exit where its labels did (``atr_column`` holds ATR(period))."""

    k_pt: float = 2.0
    k_sl: float = 1.5
    horizon: int = 10
    atr_column: str = "atr_14"


@dataclass
class PaperSummary:
    """What a paper session did (part of the live session report)."""

    run_id: str
    trades: int = 0
    net_pnl: str = "0.00"  # rupees, to the paisa (text: exact)
    open_positions: int = 0
    signals: int = 0
    ticks: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # messages lost to a full queue
    duplicate_signals: int = 0
    revised_signals: int = 0  # bars re-scored to a different signal after it was taken (not traded)
    released_undecided: int = 0  # ticks released after ``hold`` without their previous bar decided
    errors: int = 0
    write_failures: int = 0
    unwritten: int = 0  # rows still not written at the end (logged)
    metrics: dict[str, Any] = field(default_factory=dict)  # the backtest's metrics, for this session


def trade_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """Trades with the ``backtest_trades`` columns (money kept as exact Decimal rupees)."""
    return pd.DataFrame(
        {c: [getattr(t, c) for t in trades] for c in TRADE_COLUMNS}, columns=list(TRADE_COLUMNS)
    )


def signal_frame(signals: Sequence[TradeSignal]) -> pd.DataFrame:
    """Signals as taken, with the ``paper_signals`` columns (NULL, not NaN, for a missing size)."""
    return pd.DataFrame(
        {c: pd.Series([getattr(s, c) for s in signals], dtype=object) for c in SIGNAL_COLUMNS},
        columns=list(SIGNAL_COLUMNS),
    )


def position_frame(positions: Sequence[OpenPosition]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: [getattr(p, c) for p in positions] for c in POSITION_COLUMNS}, columns=list(POSITION_COLUMNS)
    )


def tick_event(tick: Tick) -> PriceEvent | None:
    """A tick as the engine's price event: traded price at its exchange time, best bid/ask when in depth.

    The instant follows the ``ticks`` table (exchange timestamp, else last trade time, else receive time),
    so a backtest over the stored ticks sees the same event.
    """
    instant = tick.exchange_timestamp or tick.last_trade_time or tick.received_at
    if instant is None or not math.isfinite(tick.last_price) or tick.last_price <= 0:
        return None
    bid = ask = None
    if tick.depth is not None and tick.depth.buy and tick.depth.sell:
        bid, ask = tick.depth.buy[0].price, tick.depth.sell[0].price
    return PriceEvent.tick(tick.instrument_token, instant, tick.last_price, bid=bid, ask=ask)


class PaperTrader:
    """Runs one :class:`TradeEngine` on the live session's signals and ticks (see the module doc)."""

    def __init__(
        self,
        *,
        engine: TradeEngine,
        repository: PaperRepository,
        run_id: str,
        feature_names: Sequence[str],
        barriers: PaperBarriers = PaperBarriers(),
        lot_sizes: Mapping[int, int] | None = None,
        calendar: SessionCalendar = NSE,
        queue_size: int = 20_000,
        hold: timedelta = timedelta(minutes=15),
        model_version: str | None = None,
    ) -> None:
        # Only the champion's signals are traded (challengers' share the table; None: every signal).
        self.model_version = model_version
        self.engine = engine
        self.repository = repository
        self.run_id = run_id
        self.barriers = barriers
        self.lot_sizes = dict(lot_sizes or {})
        self.calendar = calendar
        self.hold = hold
        names = list(feature_names)
        self._atr_index = names.index(barriers.atr_column) if barriers.atr_column in names else None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.summary = PaperSummary(run_id=run_id)
        self._dropped: Counter[str] = Counter()
        self._skipped: Counter[str] = Counter()
        # Written by the tap (on the live path), read only there.
        self._last_close: dict[int, tuple[datetime, float]] = {}
        self._last_atr: dict[int, tuple[datetime, float]] = {}
        # The trade signal taken per non-flat bar (None: not tradable, no ATR): revisions compare to it.
        self._taken: dict[tuple[int, str, datetime, str], TradeSignal | None] = {}
        # The newest bar scored per (instrument, timeframe, model): a signal at or before it is a bar
        # scored again (a rewind), flat or not; the first scoring was the decision.
        self._scored: dict[tuple[int, str, str], datetime] = {}
        # State of the background task.
        self._decided: dict[int, datetime] = {}
        self._held: deque[PriceEvent] = deque()
        self._newest: datetime | None = None
        self._open: dict[tuple[int, datetime], OpenPosition] = {}
        self._signals: dict[tuple[int, datetime], TradeSignal] = {}
        self._to_open: list[OpenPosition] = []
        self._to_record: list[TradeSignal] = []
        self._to_close: list[Trade] = []
        self._task: asyncio.Task[None] | None = None

    # -- the live path's side (never blocks, never raises) ------------------------------------------
    def tap(self, put: Put) -> Put:
        """Wrap the live engine's ``put``: rows go on unchanged, then the trader takes note."""

        def put_and_watch(table: str, rows: Sequence[object]) -> None:
            put(table, rows)
            try:
                self._watch(table, rows)
            except Exception as exc:  # paper trading must never cost the live path a row
                self.summary.errors += 1
                logger.exception("paper: could not take note of {} rows: {}", table, exc)

        return put_and_watch

    def observe_ticks(self, ticks: Sequence[Tick]) -> None:
        """The consumer's accepted ticks of one batch (after their bars went through the engine)."""
        self._offer("ticks", list(ticks))

    def _offer(self, kind: str, payload: Any) -> None:
        try:
            self._queue.put_nowait((kind, payload))
        except asyncio.QueueFull:
            self._dropped[kind] += 1

    def _watch(self, table: str, rows: Sequence[object]) -> None:
        if table == "candles":
            for bar in rows:
                if isinstance(bar, Bar) and bar.candle.timeframe is Timeframe.M1:
                    self._last_close[bar.instrument_token] = (bar.time, bar.close)
        elif table == "features":
            for row in rows:
                if not isinstance(row, FeatureRow):
                    continue
                if self._atr_index is not None:
                    self._last_atr[row.instrument_token] = (row.time, float(row.values[self._atr_index]))
                self._offer("bar", (row.instrument_token, row.time))
        elif table == "signals":
            for pending in rows:
                if isinstance(pending, PendingSignal):
                    self._take(pending)

    def _take(self, pending: PendingSignal) -> None:
        signal = pending.signal
        if self.model_version is not None and signal.model_version != self.model_version:
            return
        stream = (signal.instrument_token, str(signal.timeframe), signal.model_version)
        key = (signal.instrument_token, str(signal.timeframe), signal.time, signal.model_version)
        last = self._scored.get(stream)
        if last is not None and signal.time <= last:
            self._revisit(key, signal)
            return
        self._scored[stream] = signal.time
        if signal.direction == 0:
            return
        trade = self._trade_signal(signal)
        self._taken[key] = trade
        self.summary.signals += 1
        if trade is None:
            self._skipped["no_atr"] += 1
            return
        self._offer("signal", trade)

    def _revisit(self, key: tuple[int, str, datetime, str], signal: Signal) -> None:
        """A bar decided before was scored again (a rewind replayed it): the first decision stands,
        a flat one included (a signal turning up late would enter later than a backtest does)."""
        taken = self._taken.get(key)
        again = None if signal.direction == 0 else self._trade_signal(signal)
        if again == taken:
            self.summary.duplicate_signals += 1
            return
        self.summary.revised_signals += 1
        logger.warning(
            "paper: the signal of {} at {:%H:%M} was re-scored after it was taken ({} -> {}); "
            "the version taken stands (paper_signals), signals holds the revision",
            signal.instrument_token,
            signal.time.astimezone(IST),
            _describe(taken),
            _describe(again),
        )

    def _trade_signal(self, signal: Signal) -> TradeSignal | None:
        """The trade signal of a non-flat signal with its bar's barriers, or None without a usable ATR."""
        close = self._last_close.get(signal.instrument_token)
        atr = self._last_atr.get(signal.instrument_token)
        if (
            close is None
            or atr is None
            or close[0] != signal.time
            or atr[0] != signal.time
            or not (math.isfinite(atr[1]) and atr[1] > 0)
        ):
            return None
        size = signal.size if signal.size is not None and math.isfinite(signal.size) else None
        return barrier_signal(
            instrument_token=signal.instrument_token,
            time=signal.time,
            available_at=signal.available_at,
            direction=signal.direction,
            confidence=signal.confidence,
            size=size,
            model_version=signal.model_version,
            reference_close=close[1],
            atr=atr[1],
            k_pt=self.barriers.k_pt,
            k_sl=self.barriers.k_sl,
            horizon_bars=self.barriers.horizon,
            bar=signal.timeframe.delta,
            lot_size=self.lot_sizes.get(signal.instrument_token, 1),
            meta_size=signal.meta_size,
        )

    # -- the background task ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="live-paper")

    async def run(self) -> None:
        """Feed the engine from the queue for ever (cancelled by :meth:`close`)."""
        while True:
            message = await self._queue.get()
            self._apply(message)
            self._drain()
            self._release(final=False)
            await self._flush()

    async def close(self, *, attempts: int = 3) -> PaperSummary:
        """End of session: stop the task, feed what is queued and held, close what is open, write."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._drain()
        self._release(final=True)
        try:
            self._closed(self.engine.finish())
        except Exception as exc:
            self.summary.errors += 1
            logger.exception("paper: closing the open positions failed: {}", exc)
        for attempt in range(attempts):
            if await self._flush():
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        return self._summarize()

    def _drain(self) -> None:
        while True:
            try:
                message = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._apply(message)

    def _apply(self, message: tuple[str, Any]) -> None:
        kind, payload = message
        try:
            if kind == "signal":
                self._signals[(payload.instrument_token, payload.time)] = payload
                self._to_record.append(payload)  # recorded as fed, even if the engine skips it
                self.engine.on_signal(payload)
            elif kind == "bar":
                token, when = payload
                if when > self._decided.get(token, when - MINUTE):
                    self._decided[token] = when
            elif kind == "ticks":
                for tick in payload:
                    event = tick_event(tick)
                    if event is None:
                        continue
                    self._held.append(event)
                    if self._newest is None or event.time > self._newest:
                        self._newest = event.time
        except Exception as exc:
            self.summary.errors += 1
            logger.exception("paper: bad {} message: {}", kind, exc)

    def _releasable(self, event: PriceEvent) -> bool:
        minute = event.time.replace(second=0, microsecond=0)
        if minute - MINUTE < self.calendar.session_open(event.time.astimezone(IST).date()):
            return True  # the session's first minute: no bar before it can give a signal for today
        decided = self._decided.get(event.instrument_token)
        if decided is not None and decided >= minute - MINUTE:
            return True
        if self._newest is not None and self._newest - event.time >= self.hold:
            self.summary.released_undecided += 1
            return True
        return False

    def _release(self, *, final: bool) -> None:
        """Feed the held ticks that may go, in arrival order; an instrument still waiting for its bar
        keeps its own ticks (in order) without holding up the other instruments."""
        held = self._held
        if not held:
            return
        if final:
            while held:
                self._feed(held.popleft())
            return
        kept: deque[PriceEvent] = deque()
        waiting: set[int] = set()
        for event in held:
            if event.instrument_token in waiting or not self._releasable(event):
                waiting.add(event.instrument_token)
                kept.append(event)
            else:
                self._feed(event)
        self._held = kept

    def _feed(self, event: PriceEvent) -> None:
        self.summary.ticks += 1
        try:
            self._closed(self.engine.on_price(event))
        except Exception as exc:
            self.summary.errors += 1
            logger.exception("paper: the engine failed on a tick of {}: {}", event.instrument_token, exc)

    def _closed(self, trades: list[Trade]) -> None:
        """Note positions opened and trades closed since the last event, for the next write."""
        now_open = {(p.instrument_token, p.entry_time): p for p in self.engine.positions()}
        for key, position in now_open.items():
            if key not in self._open:
                self._to_open.append(position)
        for trade in trades:
            key = (trade.instrument_token, trade.entry_time)
            if key not in self._open and key not in now_open:
                # Opened and closed on the same price event: record the position too.
                self._to_open.append(self._position_of(trade))
            self._to_close.append(trade)
        self._open = now_open

    def _position_of(self, trade: Trade) -> OpenPosition:
        signal = self._signals[(trade.instrument_token, trade.signal_time)]
        return OpenPosition(
            instrument_token=trade.instrument_token,
            side=trade.side,
            quantity=trade.quantity,
            entry_time=trade.entry_time,
            entry_price=trade.entry_price,
            take_profit=signal.take_profit,
            stop_loss=signal.stop_loss,
            horizon_end=signal.horizon_end,
            signal_time=trade.signal_time,
            model_version=trade.model_version,
            confidence=trade.confidence,
        )

    async def _flush(self) -> bool:
        """Write what opened and closed; on failure keep it for the next write. True when all is written."""
        if not self._to_open and not self._to_close and not self._to_record:
            return True
        opened, closed, taken = list(self._to_open), list(self._to_close), list(self._to_record)
        try:
            await self.repository.record(
                self.run_id, position_frame(opened), trade_frame(closed), signal_frame(taken)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.summary.write_failures += 1
            logger.warning(
                "paper: writing {} signals/{} positions/{} trades failed ({}); will retry",
                len(taken),
                len(opened),
                len(closed),
                exc,
            )
            return False
        del self._to_open[: len(opened)]
        del self._to_close[: len(closed)]
        del self._to_record[: len(taken)]
        return True

    def _summarize(self) -> PaperSummary:
        s = self.summary
        s.trades = len(self.engine.trades)
        s.net_pnl = str(sum((t.net for t in self.engine.trades), Decimal("0.00")))
        s.open_positions = self.engine.open_positions
        s.skipped = dict(self._skipped + self.engine.skipped)
        s.dropped = dict(self._dropped)
        s.unwritten = len(self._to_open) + len(self._to_close) + len(self._to_record)
        try:
            s.metrics = summarize(
                self.engine.trades, self.engine.equity, self.engine.days, self.engine.config.limits.capital
            )
        except Exception as exc:  # a summary must not cost the session its report
            s.errors += 1
            logger.exception("paper: could not summarize the session: {}", exc)
        if s.unwritten:
            logger.error(
                "paper: {} signals/positions/trades could not be written to the database", s.unwritten
            )
        return s

    def report(self) -> dict[str, Any]:
        return asdict(self.summary)


def _describe(signal: TradeSignal | None) -> str:
    if signal is None:
        return "no trade"
    meta = "" if signal.meta_size is None else f", meta {signal.meta_size:.3f}"
    return (
        f"side {signal.direction:+d}, size {signal.size}{meta}, "
        f"TP {signal.take_profit:.2f}/SL {signal.stop_loss:.2f}"
    )
