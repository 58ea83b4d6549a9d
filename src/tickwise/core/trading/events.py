"""What the trade engine consumes: signals with their barrier levels, and prices (bars or ticks).

One price type serves both uses: a 1-minute bar is ``PriceEvent.bar`` (``time`` = its open instant,
``end`` = its close instant), a tick is ``PriceEvent.tick`` (open = high = low = close, ``time`` =
``end``). The engine only ever asks "what is the first price at or after t" (``open``), "could a level
have been touched" (``high``/``low``) and "what is the last price" (``close`` at ``end``), so a paper
session feeding ticks and a backtest feeding bars run through exactly the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """Prices of one instrument over ``[time, end]``; ``bid``/``ask`` when the feed carries depth."""

    instrument_token: int
    time: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    bid: float | None = None
    ask: float | None = None

    @classmethod
    def bar(
        cls,
        instrument_token: int,
        time: datetime,
        open_: float,
        high: float,
        low: float,
        close: float,
        span: timedelta = ONE_MINUTE,
    ) -> PriceEvent:
        """A candle whose open instant is ``time`` (Kite's convention) and which closes ``span`` later."""
        return cls(instrument_token, time, time + span, open_, high, low, close)

    @classmethod
    def tick(
        cls,
        instrument_token: int,
        time: datetime,
        price: float,
        *,
        bid: float | None = None,
        ask: float | None = None,
    ) -> PriceEvent:
        """One traded price at ``time`` (best bid/ask optional, for half-spread slippage)."""
        return cls(instrument_token, time, time, price, price, price, price, bid, ask)


@dataclass(frozen=True, slots=True)
class TradeSignal:
    """A signal ready to trade: side, when it may be acted on, and its triple-barrier exits.

    ``take_profit``/``stop_loss`` are price levels fixed at the signal bar (labeling.md §3: the signal
    bar's close ± k x ATR at that bar); ``horizon_end`` is the close instant of bar t0 + H.
    """

    instrument_token: int
    time: datetime  # open of the signal bar
    available_at: datetime
    direction: int  # +1 long, -1 short
    confidence: float
    size: float | None  # fraction of capital (None: the engine's default size)
    model_version: str
    take_profit: float
    stop_loss: float
    horizon_end: datetime
    lot_size: int = 1
    # The meta model's position scale in [0, 1] (core.meta_model.meta_size); None: no meta model.
    meta_size: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in (-1, 1):
            raise ValueError(f"a trade signal needs direction +1 or -1, got {self.direction}")
        if not (math.isfinite(self.take_profit) and math.isfinite(self.stop_loss)):
            raise ValueError("take_profit and stop_loss must be finite prices")
        if self.direction * (self.take_profit - self.stop_loss) <= 0:
            raise ValueError(
                f"take_profit {self.take_profit} must lie on the profitable side of stop_loss {self.stop_loss}"
            )
        if self.lot_size < 1:
            raise ValueError(f"lot_size must be >= 1, got {self.lot_size}")
        if self.meta_size is not None and not 0.0 <= self.meta_size <= 1.0:
            raise ValueError(f"meta_size must lie in [0, 1], got {self.meta_size}")


def barrier_signal(
    *,
    instrument_token: int,
    time: datetime,
    available_at: datetime,
    direction: int,
    confidence: float,
    size: float | None,
    model_version: str,
    reference_close: float,
    atr: float,
    k_pt: float,
    k_sl: float,
    horizon_bars: int,
    bar: timedelta = ONE_MINUTE,
    lot_size: int = 1,
    meta_size: float | None = None,
) -> TradeSignal:
    """The trade of a signal on bar t0, with the labels' barriers: P0 = close[t0], PT = P0 + s·k_pt·ATR,
    SL = P0 − s·k_sl·ATR, vertical barrier at the close of bar t0 + ``horizon_bars``."""
    if not (atr > 0 and math.isfinite(atr)):
        raise ValueError(f"ATR at the signal bar must be a positive number, got {atr}")
    return TradeSignal(
        instrument_token=instrument_token,
        time=time,
        available_at=available_at,
        direction=direction,
        confidence=confidence,
        size=size,
        model_version=model_version,
        take_profit=reference_close + direction * k_pt * atr,
        stop_loss=reference_close - direction * k_sl * atr,
        horizon_end=time + (horizon_bars + 1) * bar,
        lot_size=lot_size,
        meta_size=None if meta_size is None or not math.isfinite(meta_size) else meta_size,
    )
