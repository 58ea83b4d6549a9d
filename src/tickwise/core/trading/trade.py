"""A closed round trip and a point of the equity curve, with every rupee amount to the paisa."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

ExitReason = Literal["pt", "sl", "horizon", "square_off", "risk"]
EXIT_REASONS: tuple[ExitReason, ...] = ("pt", "sl", "horizon", "square_off", "risk")


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. ``entry_price``/``exit_price`` are market prices (the bar open, the barrier level,
    the tick); ``gross`` is ``side x quantity x (exit_price - entry_price)``. The fills were worse by the
    slippage, and the charges are computed on the fill values, so ``net = gross - charges - slippage``."""

    instrument_token: int
    side: int  # +1 long, -1 short
    quantity: int
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    exit_reason: ExitReason
    gross: Decimal
    brokerage: Decimal
    stt: Decimal
    exchange: Decimal
    sebi: Decimal
    stamp: Decimal
    gst: Decimal
    slippage: Decimal
    net: Decimal
    signal_time: datetime
    model_version: str
    confidence: float
    buy_value: Decimal  # rupees bought (fill value), for turnover
    sell_value: Decimal

    @property
    def charges(self) -> Decimal:
        return self.brokerage + self.stt + self.exchange + self.sebi + self.stamp + self.gst


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Realized equity after a trade closes (or the starting capital); ``drawdown`` = equity/peak − 1 ≤ 0."""

    time: datetime
    equity: Decimal
    drawdown: float
