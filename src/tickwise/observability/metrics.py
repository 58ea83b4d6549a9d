"""Every Prometheus metric tickwise exposes, declared once.

Names are part of the public contract (Grafana panels and alert rules use them; docs/metrics.md lists
them): prefix ``tickwise_``, base units in the name (``_seconds``, ``_rows``), ``_total`` on counters.

The metrics live in their own ``CollectorRegistry`` (never the process-global default), so tests and
benchmarks can build as many ``TickwiseMetrics`` as they like without "Duplicated timeseries" errors.

Example::

    metrics = TickwiseMetrics()
    server = start_metrics_server("127.0.0.1", 9108, metrics.registry)
    metrics.ticks_received.labels(mode="live").inc()
    server.close()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Latency buckets (seconds): the live path targets well under a second from candle close to signal,
# so resolution is concentrated between 1 ms and 2 s, with a tail for stalls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Candle close lag: from the bar's end to the moment the candle builder closed it (includes the grace
# period for late ticks, 2 s by default).
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0)

# Circuit breaker states as gauge values (a number graphs and alerts better than an enum label).
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class _AgeCollector(Collector):
    """Ages computed at scrape time, so a silent feed shows a growing age instead of a frozen one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_tick: dict[int, float] = {}
        self._model_trained_at: float | None = None

    def mark_tick(self, instrument_token: int, at: float) -> None:
        with self._lock:
            self._last_tick[instrument_token] = at

    def mark_model(self, trained_at: float) -> None:
        with self._lock:
            self._model_trained_at = trained_at

    def forget_instruments(self) -> None:
        with self._lock:
            self._last_tick.clear()

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        with self._lock:
            last = dict(self._last_tick)
            trained_at = self._model_trained_at
        age = GaugeMetricFamily(
            "tickwise_last_tick_age_seconds",
            "Seconds since the last tick was received, per instrument",
            labels=["instrument_token"],
        )
        stamp = GaugeMetricFamily(
            "tickwise_last_tick_timestamp_seconds",
            "Unix time the last tick was received, per instrument",
            labels=["instrument_token"],
        )
        for token, at in sorted(last.items()):
            age.add_metric([str(token)], max(0.0, now - at))
            stamp.add_metric([str(token)], at)
        model_age = GaugeMetricFamily(
            "tickwise_model_age_seconds", "Seconds since the serving model's training window ended"
        )
        if trained_at is not None:
            model_age.add_metric([], max(0.0, now - trained_at))
        yield age
        yield stamp
        yield model_age


class TickwiseMetrics:
    """The application's metrics in a dedicated registry (one instance per process or per test)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        # Feed and decoding.
        self.ticks_received = Counter(
            "tickwise_ticks_received_total", "Ticks accepted from the market feed", ["mode"], registry=r
        )
        self.ticks_rejected = Counter(
            "tickwise_ticks_rejected_total",
            "Ticks rejected by validation (reason: spike, stale, out_of_session, invalid, duplicate, ...)",
            ["reason"],
            registry=r,
        )
        self.frames_decoded = Counter(
            "tickwise_frames_decoded_total", "Binary WebSocket frames decoded from the feed", registry=r
        )
        self.frame_decode_errors = Counter(
            "tickwise_frame_decode_errors_total",
            "Frames or packets that could not be decoded, by reason",
            ["reason"],
            registry=r,
        )
        self.feed_reconnects = Counter(
            "tickwise_feed_reconnects_total", "WebSocket reconnect attempts", registry=r
        )
        self.feed_heartbeats = Counter(
            "tickwise_feed_heartbeats_total", "1-byte heartbeat frames received from the feed", registry=r
        )
        self.feed_connected = Gauge(
            "tickwise_feed_connected", "1 while the market feed WebSocket is connected, else 0", registry=r
        )

        # Tick queue between the feed and the candle builder.
        self.tick_queue_depth = Gauge(
            "tickwise_tick_queue_depth", "Ticks waiting in the bounded tick queue", registry=r
        )
        self.tick_queue_dropped = Counter(
            "tickwise_tick_queue_dropped_total", "Ticks dropped because the tick queue was full", registry=r
        )

        # Candles, features, model, signals.
        self.candles_closed = Counter(
            "tickwise_candles_closed_total", "Live candles closed, by timeframe", ["timeframe"], registry=r
        )
        self.candle_close_lag = Histogram(
            "tickwise_candle_close_lag_seconds",
            "From a bar's end to the moment its candle was closed",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.feature_latency = Histogram(
            "tickwise_feature_latency_seconds",
            "Time to compute the features for one closed bar (all instruments of the batch)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prediction_latency = Histogram(
            "tickwise_prediction_latency_seconds",
            "Time to score one batch of feature rows with the model",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.signal_latency = Histogram(
            "tickwise_signal_latency_seconds",
            "From a candle's close to its signal being committed to the database",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.signals = Counter(
            "tickwise_signals_total",
            "Signals emitted, by direction (long, short, flat)",
            ["direction"],
            registry=r,
        )
        self.model = Info("tickwise_model", "The model serving live signals", registry=r)

        # Database writer.
        self.db_write_latency = Histogram(
            "tickwise_db_write_latency_seconds",
            "Duration of one database write batch, by table",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_rows_written = Counter(
            "tickwise_db_rows_written_total", "Rows written to the database, by table", ["table"], registry=r
        )
        self.db_write_errors = Counter(
            "tickwise_db_write_errors_total", "Failed database write batches, by table", ["table"], registry=r
        )
        self.db_buffered_rows = Gauge(
            "tickwise_db_buffered_rows", "Rows buffered in memory waiting to be written", registry=r
        )
        self.db_spilled_rows = Counter(
            "tickwise_db_spilled_rows_total",
            "Rows spilled to disk because the database was unavailable",
            registry=r,
        )
        self.db_dropped_rows = Counter(
            "tickwise_db_dropped_rows_total",
            "Accepted rows dropped because neither memory nor the spill directory could hold them, by table",
            ["table"],
            registry=r,
        )
        self.db_spill_files_rejected = Counter(
            "tickwise_db_spill_files_rejected_total",
            "Spill files set aside as corrupt, truncated or foreign, by reason",
            ["reason"],
            registry=r,
        )

        # Resilience and alerting.
        self.circuit_breaker_state = Gauge(
            "tickwise_circuit_breaker_state",
            "Circuit breaker state by breaker: 0 closed, 1 half-open, 2 open",
            ["breaker"],
            registry=r,
        )
        self.alerts_sent = Counter(
            "tickwise_alerts_sent_total", "Alerts delivered, by priority", ["priority"], registry=r
        )
        self.alerts_suppressed = Counter(
            "tickwise_alerts_suppressed_total",
            "Alerts and signal announcements not delivered, by reason (docs/notifications.md)",
            ["reason"],
            registry=r,
        )

        # Historical mode.
        self.backfilled_candles = Counter(
            "tickwise_backfilled_candles_total",
            "Candles written by the historical backfill, by timeframe",
            ["timeframe"],
            registry=r,
        )
        self.candle_flags = Counter(
            "tickwise_candle_flags_total",
            "Candles flagged by the data-quality checks (docs/data-quality.md), by check and policy action",
            ["check", "action", "mode"],
            registry=r,
        )

        self._ages = _AgeCollector(clock)
        r.register(self._ages)

    def mark_tick(self, instrument_token: int, received_at: float) -> None:
        """Record when (unix seconds) the latest tick of an instrument arrived."""
        self._ages.mark_tick(instrument_token, received_at)

    def set_model(self, model_version: str, trained_to: float, feature_set: str = "") -> None:
        """Publish the serving model: version info and the end of its training window (unix seconds)."""
        self.model.info({"model_version": model_version, "feature_set": feature_set})
        self._ages.mark_model(trained_to)

    def set_circuit_breaker(self, breaker: str, state: str) -> None:
        """Publish a breaker's state (``closed``, ``half_open`` or ``open``)."""
        try:
            value = BREAKER_STATES[state]
        except KeyError:
            raise ValueError(
                f"unknown circuit breaker state {state!r} (expected {sorted(BREAKER_STATES)})"
            ) from None
        self.circuit_breaker_state.labels(breaker=breaker).set(value)


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def exposed_metric_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a scrape of ``registry`` can contain (``_total``, ``_bucket``, ... included).

    Families without samples yet (labelled metrics nobody has touched) count too: the name is what
    dashboards and alerts depend on, not whether it has been observed.
    """
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running ``/metrics`` endpoint; ``port`` is the bound port (useful when asked for port 0)."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/metrics`` from a daemon thread (port 0: any free port)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound_port = int(server.server_address[1])
    return MetricsServer(host=host, port=bound_port, _server=server, _thread=thread)
