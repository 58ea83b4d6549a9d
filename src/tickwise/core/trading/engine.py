"""The trade engine: signals + prices -> trades, one event at a time, for backtests and paper trading.

The engine is event-driven and pure (no I/O, no clock): ``on_signal`` queues a signal, ``on_price``
feeds one price event (a 1-minute bar in a backtest, a tick in paper trading) and returns the trades it
closed, ``finish`` closes whatever is still open at its last price. A backtest and a paper session that
feed the same signals and the same prices therefore produce the same trades to the paisa.

Rules (Zerodha intraday equity, MIS):

- **Entry** at the first price at or after the signal's ``available_at`` (the next bar's open in a
  backtest, the next tick live), on the signal's session day, before ``entry_cutoff`` (15:15 IST), if no
  position is open in the instrument and the risk limits allow it (``risk.py``). Skipped signals are
  counted by reason in ``skipped``.
- **Exit**, checked on every price event in the order the labels use (labeling.md §3): a gap through the
  profit target or the stop at the open exits at the open; a bar that touches both exits at the stop
  (stop-loss first); then the stop; then the target (``pt``/``sl`` at the level). At the close of bar
  t0 + H the trade exits at that close (``horizon``). At or after ``square_off`` (15:20 IST), or when a
  new session starts, it exits at the first price (``square_off``; the end of the data counts as a
  square-off too). After a risk limit is breached it exits at its next price (``risk``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from tickwise.core.trading.costs import ZerodhaIntradayCharges, money, to_decimal
from tickwise.core.trading.events import PriceEvent, TradeSignal
from tickwise.core.trading.risk import RiskBook, RiskLimits, sized_fraction
from tickwise.core.trading.trade import EquityPoint, ExitReason, Trade
from tickwise.domain.time import IST

BPS = Decimal(10_000)
HALF = Decimal("0.5")


@dataclass(frozen=True, slots=True)
class Slippage:
    """Adverse fill per share: half the spread when the event carries best bid/ask, else ``bps`` of price."""

    bps: float = 2.0
    use_spread: bool = True

    def __post_init__(self) -> None:
        if not self.bps >= 0:
            raise ValueError(f"slippage bps must be >= 0, got {self.bps}")

    def per_share(self, price: Decimal, event: PriceEvent) -> Decimal:
        if self.use_spread and event.bid is not None and event.ask is not None and event.ask >= event.bid > 0:
            return (to_decimal(event.ask) - to_decimal(event.bid)) * HALF
        return price * to_decimal(self.bps) / BPS


@dataclass(frozen=True, slots=True)
class SessionRules:
    """IST clock times: no new entry at or after ``entry_cutoff``; everything closed at ``square_off``."""

    entry_cutoff: time = time(15, 15)
    square_off: time = time(15, 20)

    def __post_init__(self) -> None:
        if self.entry_cutoff > self.square_off:
            raise ValueError(f"entry_cutoff {self.entry_cutoff} is after square_off {self.square_off}")


Sizing = Literal["meta", "none"]
SIZINGS: tuple[Sizing, ...] = ("meta", "none")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """``sizing``: ``meta`` scales each position by its signal's meta size when the signal has one
    (``risk.sized_fraction``); ``none`` ignores meta sizes (the unsized comparison)."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    charges: ZerodhaIntradayCharges = field(default_factory=ZerodhaIntradayCharges)
    slippage: Slippage = field(default_factory=Slippage)
    session: SessionRules = field(default_factory=SessionRules)
    sizing: Sizing = "meta"

    def __post_init__(self) -> None:
        if self.sizing not in SIZINGS:
            raise ValueError(f"sizing must be one of {SIZINGS}, got {self.sizing!r}")


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """A position the engine holds: its entry (market price) and the levels that will close it."""

    instrument_token: int
    side: int
    quantity: int
    entry_time: datetime
    entry_price: float
    take_profit: float
    stop_loss: float
    horizon_end: datetime
    signal_time: datetime
    model_version: str
    confidence: float


@dataclass(slots=True)
class _Position:
    signal: TradeSignal
    quantity: int
    entry_time: datetime
    entry_price: Decimal
    entry_slip: Decimal  # per share
    day: date
    entry_float: float = 0.0

    @property
    def notional(self) -> Decimal:
        return self.entry_price * self.quantity


class TradeEngine:
    """Turns signals into trades; see the module docstring for the rules."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.trades: list[Trade] = []
        self.equity: list[EquityPoint] = []
        self.skipped: Counter[str] = Counter()
        self.days: list[date] = []  # IST session days that had prices, in order
        self._risk = RiskBook(self.config.limits)
        self._realized = to_decimal(self.config.limits.capital)
        self._realized_peak = self._realized
        self._pending: dict[int, list[TradeSignal]] = {}
        self._positions: dict[int, _Position] = {}
        self._last: dict[int, PriceEvent] = {}
        self._day: date | None = None
        # Trades closed inside a bar are stamped at the bar's close: until then they still hold their slot
        # and capital, so an entry at another instrument's open of that same minute cannot use them.
        self._closing: list[tuple[datetime, Decimal]] = []

    # -- inputs ------------------------------------------------------------------------------------

    def on_signal(self, signal: TradeSignal) -> None:
        """Queue a signal; it is acted on at the first price of its instrument at or after ``available_at``."""
        queue = self._pending.setdefault(signal.instrument_token, [])
        queue.append(signal)
        if len(queue) > 1 and queue[-2].available_at > signal.available_at:
            queue.sort(key=lambda s: s.available_at)

    def on_price(self, event: PriceEvent) -> list[Trade]:
        """Process one price event (events must come in time order); return the trades it closed."""
        closed: list[Trade] = []
        day = event.time.astimezone(IST).date()
        if self._day is None or day > self._day:
            closed += self._start_day(day)
        if not self.equity:  # the curve starts at the starting capital, at the first price seen
            self.equity.append(EquityPoint(event.time, self._realized, 0.0))
        token = event.instrument_token
        self._last[token] = event
        if self._closing:
            self._closing = [(t, n) for t, n in self._closing if t > event.time]
        position = self._positions.get(token)
        if position is not None:
            trade = self._check_exit(position, event)
            if trade is not None:
                closed.append(trade)
        if self._pending.get(token):
            opened = self._enter(event, blocked=position is not None)
            if opened is not None:
                trade = self._check_exit(opened, event)
                if trade is not None:
                    closed.append(trade)
        if self._positions or closed:
            self._risk.mark(self._mark_to_market())
        return closed

    def finish(self) -> list[Trade]:
        """End of data: close open positions at their last price (as a square-off); drop pending signals."""
        closed = self._close_all("square_off")
        left = sum(len(queue) for queue in self._pending.values())
        if left:
            self.skipped["no_price"] += left
        self._pending.clear()
        return closed

    # -- state -------------------------------------------------------------------------------------

    @property
    def open_positions(self) -> int:
        return len(self._positions)

    def positions(self) -> list[OpenPosition]:
        """The positions open now (paper trading records them as they open)."""
        return [
            OpenPosition(
                instrument_token=token,
                side=p.signal.direction,
                quantity=p.quantity,
                entry_time=p.entry_time,
                entry_price=float(p.entry_price),
                take_profit=p.signal.take_profit,
                stop_loss=p.signal.stop_loss,
                horizon_end=p.signal.horizon_end,
                signal_time=p.signal.time,
                model_version=p.signal.model_version,
                confidence=p.signal.confidence,
            )
            for token, p in self._positions.items()
        ]

    @property
    def realized_equity(self) -> Decimal:
        return self._realized

    @property
    def halted(self) -> str | None:
        """Why new entries are stopped today (``daily_loss_limit``, ``max_drawdown``), else None."""
        return self._risk.halted

    # -- internals ---------------------------------------------------------------------------------

    def _start_day(self, day: date) -> list[Trade]:
        # Positions never survive a session (MIS): anything left from the previous day closes at its
        # last price of that day, before the new day's first price is looked at.
        closed = self._close_all("square_off")
        self._day = day
        self.days.append(day)
        self._risk.new_day(float(self._realized))
        return closed

    def _close_all(self, reason: ExitReason) -> list[Trade]:
        closed = []
        for token in list(self._positions):
            last = self._last[token]
            closed.append(self._close(self._positions[token], last.close, last.end, reason, last))
        return closed

    def _enter(self, event: PriceEvent, *, blocked: bool) -> _Position | None:
        queue = self._pending[event.instrument_token]
        opened: _Position | None = None
        while queue and queue[0].available_at <= event.time:
            signal = queue.pop(0)
            reason = self._entry_block(signal, event, blocked or opened is not None)
            if reason is not None:
                self.skipped[reason] += 1
                continue
            price = to_decimal(event.open)
            open_notional = sum((p.notional for p in self._positions.values()), Decimal(0)) + sum(
                (n for _, n in self._closing), Decimal(0)
            )
            meta = signal.meta_size if self.config.sizing == "meta" else None
            if meta == 0.0:
                self.skipped["meta_zero"] += 1  # the meta model gives this trade no size
                continue
            size = sized_fraction(signal.size, meta, self.config.limits.default_size)
            quantity = self.config.limits.quantity(size, price, signal.lot_size, open_notional)
            if quantity <= 0:
                self.skipped["zero_size" if size == 0 else "too_small"] += 1
                continue
            opened = _Position(
                signal=signal,
                quantity=quantity,
                entry_time=event.time,
                entry_price=price,
                entry_slip=self.config.slippage.per_share(price, event),
                day=event.time.astimezone(IST).date(),
                entry_float=event.open,
            )
            self._positions[event.instrument_token] = opened
        return opened

    def _entry_block(self, signal: TradeSignal, event: PriceEvent, position_open: bool) -> str | None:
        local = event.time.astimezone(IST)
        if local.date() != signal.time.astimezone(IST).date():
            return "stale"  # the session of the signal is over
        if local.time() >= self.config.session.entry_cutoff:
            return "cutoff"
        if event.time >= signal.horizon_end:
            return "expired"  # no price until its horizon (missing bars)
        if self._risk.halted is not None:
            return "risk_halt"
        if position_open:
            return "position_open"
        if len(self._positions) + len(self._closing) >= self.config.limits.max_open_positions:
            return "max_positions"
        return None

    def _check_exit(self, position: _Position, event: PriceEvent) -> Trade | None:
        signal = position.signal
        local = event.time.astimezone(IST)
        if local.date() != position.day or local.time() >= self.config.session.square_off:
            return self._close(position, event.open, event.time, "square_off", event)
        if self._risk.halted is not None:
            return self._close(position, event.open, event.time, "risk", event)
        if event.time >= signal.horizon_end:
            return self._close(position, event.open, event.time, "horizon", event)
        up, stop, o = signal.take_profit, signal.stop_loss, event.open
        if signal.direction > 0:
            if o >= up:
                return self._close(position, o, event.time, "pt", event)
            if o <= stop:
                return self._close(position, o, event.time, "sl", event)
            if event.low <= stop:  # also the double touch: stop-loss first, as the labels resolve it
                return self._close(position, stop, event.end, "sl", event)
            if event.high >= up:
                return self._close(position, up, event.end, "pt", event)
        else:
            if o <= up:
                return self._close(position, o, event.time, "pt", event)
            if o >= stop:
                return self._close(position, o, event.time, "sl", event)
            if event.high >= stop:
                return self._close(position, stop, event.end, "sl", event)
            if event.low <= up:
                return self._close(position, up, event.end, "pt", event)
        if event.end >= signal.horizon_end:
            return self._close(position, event.close, event.end, "horizon", event)
        return None

    def _close(
        self, position: _Position, price: float, when: datetime, reason: ExitReason, event: PriceEvent
    ) -> Trade:
        signal = position.signal
        side, qty = signal.direction, position.quantity
        exit_price = to_decimal(price)
        exit_slip = self.config.slippage.per_share(exit_price, event)
        if side > 0:
            buy_fill, sell_fill = position.entry_price + position.entry_slip, exit_price - exit_slip
        else:
            buy_fill, sell_fill = exit_price + exit_slip, position.entry_price - position.entry_slip
        buy_value, sell_value = money(buy_fill * qty), money(sell_fill * qty)
        charges = self.config.charges.round_trip(buy_value, sell_value)
        gross = money(side * qty * (exit_price - position.entry_price))
        slippage = money(qty * (position.entry_slip + exit_slip))
        net = gross - charges.total - slippage
        trade = Trade(
            instrument_token=signal.instrument_token,
            side=side,
            quantity=qty,
            entry_time=position.entry_time,
            entry_price=float(position.entry_price),
            exit_time=max(when, position.entry_time),
            exit_price=float(exit_price),
            exit_reason=reason,
            gross=gross,
            brokerage=charges.brokerage,
            stt=charges.stt,
            exchange=charges.exchange,
            sebi=charges.sebi,
            stamp=charges.stamp,
            gst=charges.gst,
            slippage=slippage,
            net=net,
            signal_time=signal.time,
            model_version=signal.model_version,
            confidence=signal.confidence,
            buy_value=buy_value,
            sell_value=sell_value,
        )
        del self._positions[signal.instrument_token]
        if when > event.time:
            self._closing.append((when, position.notional))
        self.trades.append(trade)
        self._realized += net
        self._realized_peak = max(self._realized_peak, self._realized)
        self.equity.append(
            EquityPoint(trade.exit_time, self._realized, float(self._realized / self._realized_peak - 1))
        )
        return trade

    def _mark_to_market(self) -> float:
        # Floats are enough for a limit check (the ledger itself stays in exact paisa).
        equity = float(self._realized)
        for token, position in self._positions.items():
            equity += (
                position.signal.direction
                * position.quantity
                * (self._last[token].close - position.entry_float)
            )
        return equity
