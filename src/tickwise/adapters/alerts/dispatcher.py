"""Alert dispatch: filter, dedup, throttle, route, and deliver in the background, per channel.

``notify(priority, key, message)`` (operational alerts) and ``notify_signal(signal)`` (live signals)
are synchronous and never block or raise: the live hot path calls them. They decide and enqueue; each
channel has its own bounded queue and delivery task, so a slow or failing channel (an SMTP server that
hangs, a webhook answering 500) delays and fails nothing but itself.

* ops alerts below ``min_priority`` are dropped; a signal goes out only when its direction is not 0
  and its confidence is at least ``SignalFilter.min_confidence``;
* dedup and throttling (:mod:`tickwise.adapters.alerts.gate`) run per kind, with their own windows;
* routes (:mod:`tickwise.adapters.alerts.routing`) pick the channels by kind and priority.

Everything not delivered is counted by reason through ``hooks.on_alert_suppressed`` (``priority``,
``low_confidence``, ``stale``, ``duplicate``, ``throttled``, ``no_channel``, ``queue_full``, ``send_failed``) and
in :attr:`AlertDispatcher.suppressed`; each delivery is counted through ``hooks.on_alert_sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loguru import logger

from tickwise.adapters.alerts.gate import Gate
from tickwise.adapters.alerts.message import PRIORITIES, Alert, DeliveryError, signal_alert
from tickwise.adapters.alerts.routing import Route, check_routes, targets
from tickwise.domain.signal import Signal
from tickwise.ports.hooks import PipelineHooks

SENT_KEPT = 1000


class AlertSink(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SignalFilter:
    """Which live signals are delivered, and how often per instrument."""

    min_confidence: float = 0.55
    high_confidence: float | None = None  # at or above: priority 'warning' (route it somewhere louder)
    throttle_s: float = 300.0  # per instrument and timeframe; a change of direction always passes
    dedup_s: float = 3600.0  # the same bar's signal from the same model is sent once
    # A signal older than this (market time since it became available) is not announced: bars
    # recomputed after a restart or repaired late are stored, but telling a trader about them now
    # would invite a trade on a stale price. None: no limit.
    max_age_s: float | None = 120.0


def _describe(routes: Sequence[Route]) -> str:
    return "; ".join(f"{r.kind}>={r.min_priority}:{','.join(r.channels) or '-'}" for r in routes) or "none"


class _Channel:
    def __init__(self, sink: AlertSink, queue_size: int) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self.task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0


class AlertDispatcher:
    """Routes operational alerts and live signals to their channels (see the module docstring)."""

    def __init__(
        self,
        sinks: Sequence[AlertSink] = (),
        *,
        routes: Sequence[Route] | None = None,
        min_priority: str = "warning",
        throttle_s: float = 60.0,
        dedup_s: float | None = None,
        signals: SignalFilter | None = None,
        symbols: Mapping[int, str] | None = None,
        hooks: PipelineHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
        queue_size: int = 1000,
        send_timeout_s: float = 10.0,
    ) -> None:
        if min_priority not in PRIORITIES:
            raise ValueError(f"min_priority must be one of {sorted(PRIORITIES)}, got {min_priority!r}")
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"alert channel names must be unique, got {names}")
        # Without explicit routes every channel gets the operational alerts (the historical behaviour).
        self.routes = list(routes) if routes is not None else [Route("ops", tuple(names))]
        check_routes(self.routes, names)
        self.channels = {s.name: _Channel(s, queue_size) for s in sinks}
        self.min_priority = min_priority
        self.ops_gate = Gate(throttle_s=throttle_s, dedup_s=throttle_s * 10 if dedup_s is None else dedup_s)
        self.signal_filter = signals
        self.signal_gate = (
            Gate(throttle_s=signals.throttle_s, dedup_s=signals.dedup_s) if signals is not None else None
        )
        self.symbols: dict[int, str] = dict(symbols or {})
        # The market clock, for the age of a signal (the simulator's clock when simulated); set by
        # the composition root once the broker is open. None: ages are not checked.
        self.market_clock: Callable[[], datetime] | None = None
        # Market seconds per real second (the simulator's speed): an age is judged in real seconds,
        # so a 150x demo session is not all "stale" after one real second.
        self.time_scale = 1.0
        self.hooks = hooks
        self.clock = clock
        self.send_timeout_s = send_timeout_s
        self.sent: deque[Alert] = deque(maxlen=SENT_KEPT)  # the latest deliveries (tests, status)
        self.suppressed: dict[str, int] = {}

    @property
    def sinks(self) -> list[AlertSink]:
        return [c.sink for c in self.channels.values()]

    # -- the two roles (ports.notifier) -----------------------------------------------------------
    def notify(self, priority: str, key: str, message: str) -> bool:
        """Queue an operational alert unless filtered; True when queued for at least one channel."""
        if priority not in PRIORITIES:
            priority = "warning"
        if PRIORITIES[priority] < PRIORITIES[self.min_priority]:
            return self._suppress("priority")
        now = self.clock()
        content = (key, message)
        reason = self.ops_gate.check(key, content, now, critical=priority == "critical")
        if reason is not None:
            return self._suppress(reason)
        if not self._enqueue(Alert(priority, key, message)):
            return False
        self.ops_gate.record(key, content, now)
        return True

    def notify_signal(self, signal: Signal) -> bool:
        """Queue a live signal if it passes the filters; True when queued for at least one channel."""
        policy, gate = self.signal_filter, self.signal_gate
        if policy is None or gate is None or signal.direction == 0:
            return False  # signal delivery off, or no trade: not an event, nothing to count
        if not signal.confidence >= policy.min_confidence:  # also rejects NaN
            return self._suppress("low_confidence")
        if policy.max_age_s is not None and self.market_clock is not None:
            age = (self.market_clock() - signal.available_at).total_seconds() / max(self.time_scale, 1e-9)
            if age > policy.max_age_s:
                return self._suppress("stale")
        high = policy.high_confidence is not None and signal.confidence >= policy.high_confidence
        alert = signal_alert(
            signal,
            self.symbols.get(signal.instrument_token, str(signal.instrument_token)),
            "warning" if high else "info",
        )
        now = self.clock()
        content = (
            signal.instrument_token,
            str(signal.timeframe),
            signal.time,
            signal.model_version,
            signal.direction,
        )
        reason = gate.check(alert.key, content, now, state=signal.direction)
        if reason is not None:
            return self._suppress(reason)
        if not self._enqueue(alert):
            return False
        gate.record(alert.key, content, now, state=signal.direction)
        return True

    def reconfigure(
        self,
        *,
        routes: Sequence[Route] | None,
        min_priority: str,
        throttle_s: float,
        dedup_s: float | None,
        signals: SignalFilter | None,
    ) -> list[str]:
        """Change routing and filters in place (a settings reload); returns one line per change.

        The channels stay as they are; dedup and throttling memory is kept, so a reload does not
        re-announce what was just sent. Raises ValueError (changing nothing) for an unknown channel.
        """
        new_routes = list(routes) if routes is not None else [Route("ops", tuple(self.channels))]
        check_routes(new_routes, self.channels)
        if min_priority not in PRIORITIES:
            raise ValueError(f"min_priority must be one of {sorted(PRIORITIES)}, got {min_priority!r}")
        changes: list[str] = []
        if new_routes != self.routes:
            changes.append(f"alert routes: {_describe(self.routes)} -> {_describe(new_routes)}")
            self.routes = new_routes
        if min_priority != self.min_priority:
            changes.append(f"alert min_priority: {self.min_priority} -> {min_priority}")
            self.min_priority = min_priority
        dedup = throttle_s * 10 if dedup_s is None else dedup_s
        if (throttle_s, dedup) != (self.ops_gate.throttle_s, self.ops_gate.dedup_s):
            changes.append(
                f"alert throttle/dedup: {self.ops_gate.throttle_s:g}/{self.ops_gate.dedup_s:g} s -> "
                f"{throttle_s:g}/{dedup:g} s"
            )
            self.ops_gate.throttle_s, self.ops_gate.dedup_s = throttle_s, dedup
        if signals != self.signal_filter:
            changes.append(f"signal alerts: {self.signal_filter} -> {signals}")
            self.signal_filter = signals
            if signals is None:
                self.signal_gate = None
            elif self.signal_gate is None:
                self.signal_gate = Gate(throttle_s=signals.throttle_s, dedup_s=signals.dedup_s)
            else:
                self.signal_gate.throttle_s, self.signal_gate.dedup_s = signals.throttle_s, signals.dedup_s
        return changes

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start one delivery task per channel (in the running event loop)."""
        for name, channel in self.channels.items():
            if channel.task is None:
                channel.task = asyncio.create_task(self._deliver(channel), name=f"alerts-{name}")

    async def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s`` overall), then stop and close the channels."""
        running = [c for c in self.channels.values() if c.task is not None]
        if running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.queue.join() for c in running)), timeout_s)
            for channel in running:
                assert channel.task is not None
                channel.task.cancel()
            await asyncio.gather(*(c.task for c in running if c.task is not None), return_exceptions=True)
            for channel in running:
                channel.task = None
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.sink.aclose()

    async def drain(self) -> None:
        """Deliver everything queued now, without background tasks (tests, one-shot commands)."""
        await asyncio.gather(*(self._drain(c) for c in self.channels.values()))

    def stats(self) -> dict[str, dict[str, int]]:
        """Per channel: messages delivered, failed and waiting."""
        return {
            name: {"delivered": c.delivered, "failed": c.failed, "queued": c.queue.qsize()}
            for name, c in self.channels.items()
        }

    # -- internals ---------------------------------------------------------------------------------
    def _enqueue(self, alert: Alert) -> bool:
        if not self.channels:
            return False  # alerts are off: nothing was suppressed, so nothing is counted
        names = targets(self.routes, alert)
        if not names:
            return self._suppress("no_channel")
        queued = False
        for name in names:
            try:
                self.channels[name].queue.put_nowait(alert)
                queued = True
            except asyncio.QueueFull:
                self._suppress("queue_full")
        return queued

    async def _drain(self, channel: _Channel) -> None:
        while not channel.queue.empty():
            alert = channel.queue.get_nowait()
            try:
                await self._send(channel, alert)
            finally:
                channel.queue.task_done()

    async def _deliver(self, channel: _Channel) -> None:
        while True:
            alert = await channel.queue.get()
            try:
                await self._send(channel, alert)
            finally:
                channel.queue.task_done()

    async def _send(self, channel: _Channel, alert: Alert) -> None:
        name = channel.sink.name
        try:
            await asyncio.wait_for(channel.sink.send(alert), self.send_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            channel.failed += 1
            # Sinks raise DeliveryError with a message free of secrets; anything else may quote a URL.
            why = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
            logger.warning("alert channel {} failed to deliver {} {!r}: {}", name, alert.kind, alert.key, why)
            self._suppress("send_failed")
            return
        channel.delivered += 1
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
