"""Pipeline hooks: Prometheus hooks move the right metrics; null, fan-out and recording hooks behave."""

from __future__ import annotations

from tickwise.observability.hooks import (
    HOOK_NAMES,
    FanOutHooks,
    NullHooks,
    PrometheusHooks,
    RecordingHooks,
)
from tickwise.observability.metrics import TickwiseMetrics
from tickwise.ports.hooks import PipelineHooks


def value(metrics: TickwiseMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_implementation_satisfies_the_port() -> None:
    implementations: list[PipelineHooks] = [
        NullHooks(),
        PrometheusHooks(TickwiseMetrics()),
        FanOutHooks(NullHooks()),
        RecordingHooks(),
    ]
    protocol_methods = {n for n in vars(PipelineHooks) if n.startswith("on_")}
    assert protocol_methods == set(HOOK_NAMES)
    for hooks in implementations:
        for name in protocol_methods:
            assert callable(getattr(hooks, name))


def test_prometheus_hooks_count_ticks_by_mode_and_rejections_by_reason() -> None:
    metrics = TickwiseMetrics(clock=lambda: 100.0)
    hooks = PrometheusHooks(metrics, mode="replay")
    hooks.on_tick_received(408065, received_at=99.5)
    hooks.on_tick_received(408065, received_at=99.75)
    hooks.on_tick_rejected("spike")
    assert value(metrics, "tickwise_ticks_received_total", mode="replay") == 2
    assert value(metrics, "tickwise_ticks_rejected_total", reason="spike") == 1
    assert value(metrics, "tickwise_last_tick_age_seconds", instrument_token="408065") == 0.25


def test_prometheus_hooks_record_latencies_in_histograms() -> None:
    metrics = TickwiseMetrics()
    hooks = PrometheusHooks(metrics)
    hooks.on_candle_closed("1m", lag_s=2.1)
    hooks.on_features(0.004)
    hooks.on_prediction(0.002)
    hooks.on_signal(1, latency_s=0.03)
    hooks.on_signal(-1, latency_s=0.05)
    hooks.on_signal(0, latency_s=0.01)
    assert value(metrics, "tickwise_candle_close_lag_seconds_count") == 1
    assert value(metrics, "tickwise_candle_close_lag_seconds_bucket", le="2.5") == 1
    assert value(metrics, "tickwise_candle_close_lag_seconds_bucket", le="2.0") == 0
    assert value(metrics, "tickwise_candles_closed_total", timeframe="1m") == 1
    assert value(metrics, "tickwise_feature_latency_seconds_sum") == 0.004
    assert value(metrics, "tickwise_prediction_latency_seconds_count") == 1
    assert value(metrics, "tickwise_signal_latency_seconds_count") == 3
    for direction in ("long", "short", "flat"):
        assert value(metrics, "tickwise_signals_total", direction=direction) == 1


def test_prometheus_hooks_track_the_database_writer() -> None:
    metrics = TickwiseMetrics()
    hooks = PrometheusHooks(metrics)
    hooks.on_db_write("signals", latency_s=0.02, rows=12)
    hooks.on_db_write_failed("signals")
    hooks.on_buffered(340)
    hooks.on_spilled(340)
    assert value(metrics, "tickwise_db_rows_written_total", table="signals") == 12
    assert value(metrics, "tickwise_db_write_latency_seconds_count", table="signals") == 1
    assert value(metrics, "tickwise_db_write_errors_total", table="signals") == 1
    assert value(metrics, "tickwise_db_buffered_rows") == 340
    assert value(metrics, "tickwise_db_spilled_rows_total") == 340


def test_prometheus_hooks_track_feed_health_and_queue() -> None:
    metrics = TickwiseMetrics()
    hooks = PrometheusHooks(metrics)
    hooks.on_feed_connected(True)
    hooks.on_frame_decoded(packets=5)
    hooks.on_decode_error("short_packet")
    hooks.on_heartbeat()
    hooks.on_reconnect()
    hooks.on_queue_depth(17)
    hooks.on_tick_dropped(3)
    assert value(metrics, "tickwise_feed_connected") == 1
    assert value(metrics, "tickwise_frames_decoded_total") == 1
    assert value(metrics, "tickwise_frame_decode_errors_total", reason="short_packet") == 1
    assert value(metrics, "tickwise_feed_heartbeats_total") == 1
    assert value(metrics, "tickwise_feed_reconnects_total") == 1
    assert value(metrics, "tickwise_tick_queue_depth") == 17
    assert value(metrics, "tickwise_tick_queue_dropped_total") == 3
    hooks.on_feed_connected(False)
    assert value(metrics, "tickwise_feed_connected") == 0


def test_prometheus_hooks_publish_model_breakers_alerts_and_backfill() -> None:
    metrics = TickwiseMetrics(clock=lambda: 10_000.0)
    hooks = PrometheusHooks(metrics)
    hooks.on_model_loaded("v7", trained_to=9_000.0, feature_set="core-v1")
    hooks.on_circuit_breaker("kite_rest", "half_open")
    hooks.on_circuit_breaker("db", "melted")  # unknown states read as open rather than crash the pipeline
    hooks.on_alert_sent("critical")
    hooks.on_alert_suppressed("throttled")
    hooks.on_backfilled("1m", 375)
    assert value(metrics, "tickwise_model_info", model_version="v7", feature_set="core-v1") == 1
    assert value(metrics, "tickwise_model_age_seconds") == 1_000
    assert value(metrics, "tickwise_circuit_breaker_state", breaker="kite_rest") == 1
    assert value(metrics, "tickwise_circuit_breaker_state", breaker="db") == 2
    assert value(metrics, "tickwise_alerts_sent_total", priority="critical") == 1
    assert value(metrics, "tickwise_alerts_suppressed_total", reason="throttled") == 1
    assert value(metrics, "tickwise_backfilled_candles_total", timeframe="1m") == 375


def test_fan_out_hooks_forward_every_call_to_each_hook_in_order() -> None:
    first, second = RecordingHooks(), RecordingHooks()
    hooks = FanOutHooks(first, second)
    hooks.on_signal(1, latency_s=0.5)
    hooks.on_reconnect()
    for recorder in (first, second):
        assert recorder.names() == ["on_signal", "on_reconnect"]
        assert recorder.of("on_signal") == [(1, 0.5)]


def test_null_hooks_accept_every_call_and_do_nothing() -> None:
    hooks = NullHooks()
    for name in HOOK_NAMES:
        method = getattr(hooks, name)
        assert method.__code__.co_argcount >= 1
    hooks.on_db_write("candles", 0.1, 10)
    hooks.on_tick_received(1, 0.0)
