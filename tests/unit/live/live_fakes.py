"""Fakes for the live pipeline's unit tests (the ticker's real counters, no socket)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from tickwise.adapters.kite.ticker_state import DisconnectInterval, TickerStats
from tickwise.domain.tick import Tick


class SilentFeed:
    """A feed whose counters the test advances by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Tick] = asyncio.Queue()
        self.stats = TickerStats()
        self.gaps: list[DisconnectInterval] = []
        self.state = "connected"
        self.error: BaseException | None = None

    async def subscribe(self, tokens: Iterable[int], mode: str = "quote") -> None:
        return None

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        return None

    def start(self) -> asyncio.Task[None]:
        raise NotImplementedError("not started in these tests")

    async def __aenter__(self) -> SilentFeed:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
