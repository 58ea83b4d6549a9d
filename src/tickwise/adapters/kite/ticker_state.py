"""Vocabulary of the Kite ticker: connection states, disconnect intervals, counters, callbacks, options."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, TypedDict

from tickwise.adapters.kite.codec import DecodeStats
from tickwise.domain.backoff import Backoff
from tickwise.domain.tick import Tick

MODES = ("ltp", "quote", "full")

# What a connection does with a tick that does not fit in the queue: drop it (and count it) or wait.
OverflowPolicy = Literal["drop_newest", "block"]


class TickerState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    CLOSED = "closed"  # closed by the caller
    AUTH_FAILED = "auth_failed"  # terminal: the server refused the token (403)
    GAVE_UP = "gave_up"  # terminal: max_attempts consecutive connection failures

    @property
    def terminal(self) -> bool:
        return self in (TickerState.CLOSED, TickerState.AUTH_FAILED, TickerState.GAVE_UP)


@dataclass(slots=True)
class DisconnectInterval:
    """A span without data on one connection: from the last frame received to the next handshake."""

    shard: int
    disconnected_at: datetime  # tz-aware
    reconnected_at: datetime | None = None  # None while still disconnected
    reason: str = ""

    @property
    def closed(self) -> bool:
        return self.reconnected_at is not None


@dataclass(slots=True)
class TickerStats:
    """Counters for the whole ticker (all shards)."""

    connects: int = 0  # successful handshakes
    reconnects: int = 0  # successful handshakes after a lost connection
    failed_connects: int = 0  # handshakes refused or failed
    disconnects: int = 0
    watchdog_timeouts: int = 0
    client_stalls: int = (
        0  # times our own event loop was blocked past a watchdog tick (not counted as silence)
    )
    frames: int = 0  # binary data frames (not heartbeats)
    heartbeats: int = 0
    ticks: int = 0  # ticks decoded
    enqueued: int = 0
    dropped: int = 0  # ticks dropped because the queue was full
    text_messages: int = 0
    text_by_type: dict[str, int] = field(default_factory=dict)
    text_unparsed: int = 0
    server_errors: list[str] = field(default_factory=list)  # text 'error' payloads (last 100)
    handler_errors: int = 0  # exceptions raised by on_text / on_gap callbacks
    decode: DecodeStats = field(default_factory=DecodeStats)

    @property
    def decode_errors(self) -> int:
        return sum(self.decode.anomalies().values())


TextHandler = Callable[[str, object], Awaitable[None] | None]  # (type, data) of a text frame
GapHandler = Callable[[DisconnectInterval], Awaitable[None] | None]
TokenReloader = Callable[[], Awaitable[str | None]]


class TickerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`KiteTicker` (for factories that pass them through, typed)."""

    root: str
    queue: asyncio.Queue[Tick] | None
    queue_size: int
    overflow: OverflowPolicy
    watchdog_s: float
    backoff: Backoff | None
    max_attempts: int | None
    too_many_connections_delay_s: float
    connect_timeout_s: float
    max_tokens_per_connection: int
    max_connections: int
    on_text: TextHandler | None
    on_gap: GapHandler | None
    token_reloader: TokenReloader | None
    now: Callable[[], datetime] | None
