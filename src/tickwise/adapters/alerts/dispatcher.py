"""Alert dispatch: priority filter, per-key throttling, dedup, background delivery to the sinks.

``notify(priority, key, message)`` is synchronous and never blocks or raises (the live hot path may
call it). An alert goes out when its priority is at least ``min_priority``, and

* **dedup**: the same ``(key, message)`` is not sent again within ``dedup_s``;
* **throttle**: at most one alert per ``key`` per ``throttle_s`` (``critical`` alerts use a quarter of
  it, so an escalation is not swallowed by an earlier warning).

Suppressed alerts are counted by reason (``priority``, ``duplicate``, ``throttled``, ``queue_full``,
``send_failed``) through the hooks. Delivery failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from loguru import logger

PRIORITIES = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Alert:
    priority: str
    key: str
    message: str
    at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "priority": self.priority,
            "key": self.key,
            "message": self.message,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "source": "tickwise",
        }


class AlertSink(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...


class AlertDispatcher:
    """Filters, throttles and dedups alerts, and delivers them to every sink in the background."""

    def __init__(
        self,
        sinks: Sequence[AlertSink] = (),
        *,
        min_priority: str = "warning",
        throttle_s: float = 60.0,
        dedup_s: float | None = None,
        hooks: Any = None,
        clock: Callable[[], float] = time.monotonic,
        queue_size: int = 1000,
    ) -> None:
        if min_priority not in PRIORITIES:
            raise ValueError(f"min_priority must be one of {sorted(PRIORITIES)}, got {min_priority!r}")
        self.sinks = list(sinks)
        self.min_priority = min_priority
        self.throttle_s = throttle_s
        self.dedup_s = throttle_s * 10 if dedup_s is None else dedup_s
        self.hooks = hooks
        self.clock = clock
        self._last_by_key: dict[str, float] = {}
        self._last_by_content: dict[tuple[str, str], float] = {}
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self.sent: list[Alert] = []
        self.suppressed: dict[str, int] = {}

    def notify(self, priority: str, key: str, message: str) -> bool:
        """Queue an alert unless filtered; True when it was queued for delivery."""
        if priority not in PRIORITIES:
            priority = "warning"
        now = self.clock()
        if PRIORITIES[priority] < PRIORITIES[self.min_priority]:
            return self._suppress("priority")
        content = (key, message)
        last = self._last_by_content.get(content)
        if last is not None and now - last < self.dedup_s:
            return self._suppress("duplicate")
        window = self.throttle_s / 4 if priority == "critical" else self.throttle_s
        last = self._last_by_key.get(key)
        if last is not None and now - last < window:
            return self._suppress("throttled")
        alert = Alert(priority, key, message)
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            return self._suppress("queue_full")
        self._last_by_key[key] = now
        self._last_by_content[content] = now
        return True

    def start(self) -> None:
        if self._task is None and self.sinks:
            self._task = asyncio.create_task(self._deliver(), name="alerts")

    async def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s``), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for sink in self.sinks:
            closer = getattr(sink, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def drain(self) -> None:
        """Deliver everything queued now (tests, shutdown without a background task)."""
        while not self._queue.empty():
            await self._send(self._queue.get_nowait())
            self._queue.task_done()

    async def _deliver(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._send(alert)
            finally:
                self._queue.task_done()

    async def _send(self, alert: Alert) -> None:
        ok = False
        for sink in self.sinks:
            try:
                await sink.send(alert)
                ok = True
            except Exception as exc:
                logger.warning("alert sink {} failed: {}", getattr(sink, "name", sink), exc)
                self._suppress("send_failed")
        if ok:
            self.sent.append(alert)
            if self.hooks is not None:
                with contextlib.suppress(Exception):
                    self.hooks.on_alert_sent(alert.priority)

    def _suppress(self, reason: str) -> bool:
        self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
        if self.hooks is not None:
            with contextlib.suppress(Exception):
                self.hooks.on_alert_suppressed(reason)
        return False
