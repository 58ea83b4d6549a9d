"""Client-side request pacing for Kite's per-second limits (kite-protocol.md section 3.3).

Kite (and the simulator) count requests per api_key in a *sliding* second: historical 3/s, quote 1/s,
everything else 10/s, and no more than 10/s combined. A classic token bucket with burst = rate can
put ``2 * rate - 1`` requests into one sliding second, so each bucket here is a sliding-window
reservation log instead: a request takes the earliest instant at which every bucket it draws from
has had fewer than ``limit`` requests in the preceding ``period + margin`` seconds. The margin absorbs
network jitter between when we send and when the server counts. Reservation is synchronous, so
concurrent callers get distinct, ordered slots without a lock.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol


class Clock(Protocol):
    """Monotonic time source plus sleep; tests inject a fake that advances on sleep."""

    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class EndpointClass(StrEnum):
    HISTORICAL = "historical"
    QUOTE = "quote"
    OTHER = "other"


DEFAULT_LIMITS: dict[EndpointClass, int] = {
    EndpointClass.HISTORICAL: 3,
    EndpointClass.QUOTE: 1,
    EndpointClass.OTHER: 10,
}
SHARED_LIMIT = 10


def endpoint_class(path: str) -> EndpointClass:
    """Classify a REST path for rate limiting."""
    if path.startswith("/instruments/historical/"):
        return EndpointClass.HISTORICAL
    if path == "/quote" or path.startswith("/quote/"):
        return EndpointClass.QUOTE
    return EndpointClass.OTHER


class TokenBucket:
    """At most ``limit`` requests in any window of ``period + margin`` seconds."""

    def __init__(self, limit: int, period: float = 1.0, margin: float = 0.05) -> None:
        if limit < 1 or period <= 0 or margin < 0:
            raise ValueError(f"invalid bucket: limit={limit} period={period} margin={margin}")
        self.limit = limit
        self.window = period + margin
        self._slots: deque[float] = deque()

    def earliest(self, now: float) -> float:
        """The earliest instant >= now (and >= the last reservation) at which a request fits."""
        earliest = now
        if self._slots:
            earliest = max(earliest, self._slots[-1])
            if len(self._slots) >= self.limit:
                earliest = max(earliest, self._slots[-self.limit] + self.window)
        return earliest

    def record(self, slot: float) -> None:
        self._slots.append(slot)
        while len(self._slots) > self.limit:
            self._slots.popleft()


class RateLimiter:
    """One bucket per endpoint class plus a shared bucket, all per api_key."""

    def __init__(
        self,
        limits: dict[EndpointClass, int] | None = None,
        shared_limit: int = SHARED_LIMIT,
        *,
        period: float = 1.0,
        margin: float = 0.05,
        clock: Clock | None = None,
    ) -> None:
        merged = {**DEFAULT_LIMITS, **(limits or {})}
        self.buckets = {cls: TokenBucket(n, period, margin) for cls, n in merged.items()}
        self.shared = TokenBucket(shared_limit, period, margin)
        self.clock: Clock = clock or SystemClock()
        self.waited_s = 0.0  # total time spent waiting for a slot (observability)

    def reserve(self, cls: EndpointClass) -> float:
        """Reserve the next slot for ``cls``; return how long to wait for it (seconds, >= 0)."""
        now = self.clock.monotonic()
        buckets: Sequence[TokenBucket] = (self.buckets[cls], self.shared)
        slot = max(b.earliest(now) for b in buckets)
        for bucket in buckets:
            bucket.record(slot)
        return slot - now

    async def acquire(self, cls: EndpointClass) -> None:
        """Wait until a request of class ``cls`` may be sent."""
        delay = self.reserve(cls)
        if delay > 0:
            self.waited_s += delay
            await self.clock.sleep(delay)
