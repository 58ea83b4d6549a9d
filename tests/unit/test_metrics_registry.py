"""The metrics registry: names follow the conventions, instances are independent, the server serves."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tickwise.observability.metrics import TickwiseMetrics, exposed_metric_names, start_metrics_server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def families(metrics: TickwiseMetrics) -> dict[str, str]:
    return {f.name: f.type for f in metrics.registry.collect()}


def test_every_metric_name_starts_with_tickwise_and_is_snake_case() -> None:
    for name in families(TickwiseMetrics()):
        assert re.fullmatch(r"tickwise_[a-z0-9_]+", name), name


def test_counters_are_exposed_with_total_and_histograms_with_seconds() -> None:
    metrics = TickwiseMetrics()
    names = exposed_metric_names(metrics.registry)
    for name, kind in families(metrics).items():
        if kind == "counter":
            assert f"{name}_total" in names
        if kind == "histogram":
            assert name.endswith("_seconds"), name
            assert {f"{name}_bucket", f"{name}_sum", f"{name}_count"} <= names


def test_the_metrics_the_live_pipeline_relies_on_exist() -> None:
    names = exposed_metric_names(TickwiseMetrics().registry)
    expected = {
        "tickwise_ticks_received_total",
        "tickwise_ticks_rejected_total",
        "tickwise_frames_decoded_total",
        "tickwise_frame_decode_errors_total",
        "tickwise_feed_reconnects_total",
        "tickwise_feed_heartbeats_total",
        "tickwise_feed_connected",
        "tickwise_tick_queue_depth",
        "tickwise_tick_queue_dropped_total",
        "tickwise_candle_close_lag_seconds_bucket",
        "tickwise_feature_latency_seconds_bucket",
        "tickwise_prediction_latency_seconds_bucket",
        "tickwise_signal_latency_seconds_bucket",
        "tickwise_signals_total",
        "tickwise_db_write_latency_seconds_bucket",
        "tickwise_db_buffered_rows",
        "tickwise_db_spilled_rows_total",
        "tickwise_model_info",
        "tickwise_model_age_seconds",
        "tickwise_last_tick_age_seconds",
        "tickwise_circuit_breaker_state",
        "tickwise_alerts_sent_total",
        "tickwise_alerts_suppressed_total",
        "tickwise_backfilled_candles_total",
    }
    assert expected <= names, expected - names


def test_two_instances_do_not_share_a_registry() -> None:
    first, second = TickwiseMetrics(), TickwiseMetrics()
    first.feed_reconnects.inc()
    assert first.registry.get_sample_value("tickwise_feed_reconnects_total") == 1
    assert second.registry.get_sample_value("tickwise_feed_reconnects_total") == 0


def test_metrics_can_use_a_registry_supplied_by_the_caller() -> None:
    registry = CollectorRegistry()
    metrics = TickwiseMetrics(registry)
    assert metrics.registry is registry
    assert "tickwise_signals_total" in exposed_metric_names(registry)


def test_last_tick_age_is_computed_at_scrape_time_from_the_clock() -> None:
    now = [1_000.0]
    metrics = TickwiseMetrics(clock=lambda: now[0])
    metrics.mark_tick(256265, received_at=990.0)
    labels = {"instrument_token": "256265"}
    assert metrics.registry.get_sample_value("tickwise_last_tick_age_seconds", labels) == 10.0
    now[0] = 1_030.0
    assert metrics.registry.get_sample_value("tickwise_last_tick_age_seconds", labels) == 40.0
    assert metrics.registry.get_sample_value("tickwise_last_tick_timestamp_seconds", labels) == 990.0


def test_model_info_and_age_are_published_together() -> None:
    metrics = TickwiseMetrics(clock=lambda: 5_000.0)
    assert metrics.registry.get_sample_value("tickwise_model_age_seconds") is None
    metrics.set_model("m-20250101-abc", trained_to=4_000.0, feature_set="fs1")
    info = {"model_version": "m-20250101-abc", "feature_set": "fs1"}
    assert metrics.registry.get_sample_value("tickwise_model_info", info) == 1
    assert metrics.registry.get_sample_value("tickwise_model_age_seconds") == 1_000.0


def test_unknown_circuit_breaker_state_is_a_clear_error() -> None:
    metrics = TickwiseMetrics()
    metrics.set_circuit_breaker("db", "open")
    assert metrics.registry.get_sample_value("tickwise_circuit_breaker_state", {"breaker": "db"}) == 2
    with pytest.raises(ValueError, match="half_open"):
        metrics.set_circuit_breaker("db", "ajar")


def test_metrics_server_serves_the_registry_on_a_free_port() -> None:
    metrics = TickwiseMetrics()
    metrics.signals.labels(direction="long").inc(3)
    server = start_metrics_server("127.0.0.1", 0, metrics.registry)
    try:
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=5) as response:
            body = response.read().decode()
        assert 'tickwise_signals_total{direction="long"} 3.0' in body
        # The process-global default registry is not served: no python_gc_* or process_* noise.
        assert "python_gc_objects_collected_total" not in body
    finally:
        server.close()


def test_every_metric_is_documented_in_the_metrics_reference() -> None:
    text = DOCS.read_text()
    missing = [name for name in families(TickwiseMetrics()) if name not in text]
    assert not missing, f"add these to docs/metrics.md: {missing}"
