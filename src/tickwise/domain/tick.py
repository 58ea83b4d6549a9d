"""A Kite tick snapshot, with Kite's field names.

``change`` follows the official Python client: a percentage ``(ltp - close) * 100 / close``
(0 when close is 0), for index and tradable packets alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DepthLevel:
    quantity: int
    price: float
    orders: int


@dataclass(frozen=True, slots=True)
class Depth:
    buy: tuple[DepthLevel, ...]
    sell: tuple[DepthLevel, ...]


@dataclass(frozen=True, slots=True)
class OHLC:
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class Tick:
    instrument_token: int
    mode: str  # 'ltp', 'quote' or 'full'
    tradable: bool
    last_price: float
    last_traded_quantity: int | None = None
    average_traded_price: float | None = None
    volume_traded: int | None = None
    total_buy_quantity: int | None = None
    total_sell_quantity: int | None = None
    ohlc: OHLC | None = None
    change: float | None = None
    last_trade_time: datetime | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    exchange_timestamp: datetime | None = None  # tz-aware IST; None when the packet has none
    depth: Depth | None = None
    received_at: datetime | None = None  # local receive instant, set by the feed
