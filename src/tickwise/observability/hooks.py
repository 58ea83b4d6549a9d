"""Implementations of ``ports.hooks.PipelineHooks``.

- ``NullHooks``: does nothing (the default; benchmarks and batch code that measure nothing).
- ``PrometheusHooks``: updates ``TickwiseMetrics``.
- ``FanOutHooks``: forwards every call to several hooks (e.g. Prometheus plus a recorder).
- ``RecordingHooks``: remembers every call, for tests that assert what a pipeline reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickwise.observability.metrics import TickwiseMetrics
from tickwise.ports.hooks import PipelineHooks

_DIRECTIONS = {1: "long", -1: "short", 0: "flat"}


class NullHooks:
    """Hooks that measure nothing."""

    def on_frame_decoded(self, packets: int) -> None:
        pass

    def on_decode_error(self, reason: str) -> None:
        pass

    def on_heartbeat(self) -> None:
        pass

    def on_reconnect(self) -> None:
        pass

    def on_feed_connected(self, connected: bool) -> None:
        pass

    def on_tick_received(self, instrument_token: int, received_at: float) -> None:
        pass

    def on_tick_rejected(self, reason: str) -> None:
        pass

    def on_queue_depth(self, depth: int) -> None:
        pass

    def on_tick_dropped(self, count: int = 1) -> None:
        pass

    def on_candle_closed(self, timeframe: str, lag_s: float) -> None:
        pass

    def on_features(self, latency_s: float) -> None:
        pass

    def on_prediction(self, latency_s: float) -> None:
        pass

    def on_signal(self, direction: int, latency_s: float) -> None:
        pass

    def on_model_loaded(self, model_version: str, trained_to: float, feature_set: str) -> None:
        pass

    def on_db_write(self, table: str, latency_s: float, rows: int) -> None:
        pass

    def on_db_write_failed(self, table: str) -> None:
        pass

    def on_buffered(self, rows: int) -> None:
        pass

    def on_spilled(self, rows: int) -> None:
        pass

    def on_spill_dropped(self, table: str, rows: int) -> None:
        pass

    def on_spill_rejected(self, reason: str) -> None:
        pass

    def on_circuit_breaker(self, breaker: str, state: str) -> None:
        pass

    def on_alert_sent(self, priority: str) -> None:
        pass

    def on_alert_suppressed(self, reason: str) -> None:
        pass

    def on_backfilled(self, timeframe: str, candles: int) -> None:
        pass

    def on_candles_flagged(self, check: str, action: str, candles: int) -> None:
        pass


class PrometheusHooks:
    """Hooks that update the Prometheus metrics; ``mode`` labels tick counts (``live`` or ``replay``)."""

    def __init__(self, metrics: TickwiseMetrics, mode: str = "live") -> None:
        self.metrics = metrics
        self.mode = mode
        self._ticks = metrics.ticks_received.labels(mode=mode)

    def on_frame_decoded(self, packets: int) -> None:
        self.metrics.frames_decoded.inc()

    def on_decode_error(self, reason: str) -> None:
        self.metrics.frame_decode_errors.labels(reason=reason).inc()

    def on_heartbeat(self) -> None:
        self.metrics.feed_heartbeats.inc()

    def on_reconnect(self) -> None:
        self.metrics.feed_reconnects.inc()

    def on_feed_connected(self, connected: bool) -> None:
        self.metrics.feed_connected.set(1 if connected else 0)

    def on_tick_received(self, instrument_token: int, received_at: float) -> None:
        self._ticks.inc()
        self.metrics.mark_tick(instrument_token, received_at)

    def on_tick_rejected(self, reason: str) -> None:
        self.metrics.ticks_rejected.labels(reason=reason).inc()

    def on_queue_depth(self, depth: int) -> None:
        self.metrics.tick_queue_depth.set(depth)

    def on_tick_dropped(self, count: int = 1) -> None:
        self.metrics.tick_queue_dropped.inc(count)

    def on_candle_closed(self, timeframe: str, lag_s: float) -> None:
        self.metrics.candles_closed.labels(timeframe=timeframe).inc()
        self.metrics.candle_close_lag.observe(max(0.0, lag_s))

    def on_features(self, latency_s: float) -> None:
        self.metrics.feature_latency.observe(max(0.0, latency_s))

    def on_prediction(self, latency_s: float) -> None:
        self.metrics.prediction_latency.observe(max(0.0, latency_s))

    def on_signal(self, direction: int, latency_s: float) -> None:
        self.metrics.signals.labels(direction=_DIRECTIONS.get(direction, "unknown")).inc()
        self.metrics.signal_latency.observe(max(0.0, latency_s))

    def on_model_loaded(self, model_version: str, trained_to: float, feature_set: str) -> None:
        self.metrics.set_model(model_version, trained_to, feature_set)

    def on_db_write(self, table: str, latency_s: float, rows: int) -> None:
        self.metrics.db_write_latency.labels(table=table).observe(max(0.0, latency_s))
        self.metrics.db_rows_written.labels(table=table).inc(rows)

    def on_db_write_failed(self, table: str) -> None:
        self.metrics.db_write_errors.labels(table=table).inc()

    def on_buffered(self, rows: int) -> None:
        self.metrics.db_buffered_rows.set(rows)

    def on_spilled(self, rows: int) -> None:
        self.metrics.db_spilled_rows.inc(rows)

    def on_spill_dropped(self, table: str, rows: int) -> None:
        self.metrics.db_dropped_rows.labels(table=table).inc(rows)

    def on_spill_rejected(self, reason: str) -> None:
        self.metrics.db_spill_files_rejected.labels(reason=reason).inc()

    def on_circuit_breaker(self, breaker: str, state: str) -> None:
        # A typo in a state name must not take the live pipeline down; record it as "open" (the
        # conservative reading) instead of raising.
        try:
            self.metrics.set_circuit_breaker(breaker, state)
        except ValueError:
            self.metrics.set_circuit_breaker(breaker, "open")

    def on_alert_sent(self, priority: str) -> None:
        self.metrics.alerts_sent.labels(priority=priority).inc()

    def on_alert_suppressed(self, reason: str) -> None:
        self.metrics.alerts_suppressed.labels(reason=reason).inc()

    def on_backfilled(self, timeframe: str, candles: int) -> None:
        self.metrics.backfilled_candles.labels(timeframe=timeframe).inc(candles)

    def on_candles_flagged(self, check: str, action: str, candles: int) -> None:
        self.metrics.candle_flags.labels(check=check, action=action, mode=self.mode).inc(candles)


class FanOutHooks(NullHooks):
    """Forward every call to each of ``hooks`` in order."""

    def __init__(self, *hooks: PipelineHooks) -> None:
        self.hooks = hooks


class RecordingHooks(NullHooks):
    """Remember every call as ``(method name, arguments)``; a fake for pipeline tests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def names(self) -> list[str]:
        """Names of the methods called, in order."""
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """Arguments of every call to ``name``."""
        return [args for called, args in self.calls if called == name]


HOOK_NAMES = tuple(name for name in vars(NullHooks) if name.startswith("on_"))


def _forwarding(name: str) -> Callable[..., None]:
    def forward(self: FanOutHooks, *args: Any, **kwargs: Any) -> None:
        for hook in self.hooks:
            getattr(hook, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


def _recording(name: str) -> Callable[..., None]:
    def record(self: RecordingHooks, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args + tuple(kwargs.values())))

    record.__name__ = name
    return record


# The method lists stay in one place (NullHooks, checked against the protocol by mypy); the fan-out and
# recording variants are derived from it so a new hook cannot be forgotten in either.
for _name in HOOK_NAMES:
    setattr(FanOutHooks, _name, _forwarding(_name))
    setattr(RecordingHooks, _name, _recording(_name))
