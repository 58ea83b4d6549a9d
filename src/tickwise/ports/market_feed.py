"""MarketFeed: the live tick stream as the live pipeline sees it (implementation: ``adapters.kite``'s
``KiteTicker``; tests may drive a fake). Also the REST source the live pipeline repairs gaps from.

The feed pushes decoded ticks into a bounded ``queue`` and records every span without data as a
:class:`FeedGap` (from the last frame received to the next handshake), so the pipeline can backfill
those minutes; ``stats`` counts frames, heartbeats and damaged frames for silence and decode checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol

from tickwise.domain.candle import Candle
from tickwise.domain.tick import Tick
from tickwise.domain.timeframe import Timeframe


class FeedGap(Protocol):
    """A span without data on one connection (tz-aware instants)."""

    @property
    def disconnected_at(self) -> datetime: ...
    @property
    def reconnected_at(self) -> datetime | None: ...  # None while still disconnected
    @property
    def reason(self) -> str: ...


class FeedStats(Protocol):
    """Counters since the feed started."""

    @property
    def frames(self) -> int: ...  # binary data frames
    @property
    def heartbeats(self) -> int: ...
    @property
    def decode_errors(self) -> int: ...  # anomalies in decoded frames
    @property
    def handler_errors(self) -> int: ...
    @property
    def dropped(self) -> int: ...  # ticks dropped because the queue was full
    @property
    def reconnects(self) -> int: ...


class MarketFeed(Protocol):
    """A started-on-demand tick stream; an async context manager that closes it on exit."""

    @property
    def queue(self) -> asyncio.Queue[Tick]: ...
    @property
    def stats(self) -> FeedStats: ...
    @property
    def gaps(self) -> Sequence[FeedGap]: ...
    @property
    def state(self) -> str: ...  # idle, connecting, connected, ... ('connected' when streaming)
    @property
    def error(self) -> BaseException | None: ...  # why the feed stopped for good, if it did

    async def subscribe(self, tokens: Iterable[int], mode: str = "quote") -> None: ...
    async def wait_connected(self, timeout_s: float | None = None) -> None: ...
    def start(self) -> asyncio.Task[None]: ...
    async def __aenter__(self) -> MarketFeed: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# Opens a feed that queues in full without dropping (backpressure) and reports each closed gap.
FeedFactory = Callable[[Callable[[FeedGap], None]], MarketFeed]


class CandleSource(Protocol):
    """Broker candles by REST (``KiteRestClient``): what the live pipeline backfills repairs from."""

    async def historical(
        self, instrument_token: int, interval: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]: ...
