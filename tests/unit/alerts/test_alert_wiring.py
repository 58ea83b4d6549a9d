"""Alert configuration: old keys keep working, channels and routes from YAML, secrets from env only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwise.adapters.alerts import (
    AlertDispatcher,
    EmailSink,
    Route,
    SignalFilter,
    SlackSink,
    WebhookSink,
    redact_url,
)
from tickwise.adapters.alerts.gate import Gate
from tickwise.adapters.alerts.message import Alert
from tickwise.adapters.alerts.routing import targets
from tickwise.bootstrap.alerts import channel_secrets, make_alerts, notify_after_commit, reload_alerts
from tickwise.config import load_settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import PendingSignal

T0 = datetime(2026, 3, 10, 4, 35, tzinfo=UTC)

ROUTED = """
monitoring:
  alerts:
    enabled: true
    webhook_url: http://ops.local/hook
    min_priority: info
    channels:
      trading:
        type: slack
        url: ${SLACK_URL}
      pager:
        type: email
        host: smtp.local
        port: 2525
        starttls: false
        sender: tickwise@local
        to: [oncall@local]
        password_env: PAGER_SMTP_PASSWORD
        username_env: PAGER_SMTP_USER
      unset:
        type: slack
        url: ""
    routes:
      - {kind: signal, channels: [trading]}
      - {kind: ops, channels: [webhook]}
      - {kind: ops, channels: [pager, unset], min_priority: critical}
    signals:
      min_confidence: 0.6
      throttle_s: 0
"""


def sig(direction: int = 1, confidence: float = 0.7, minute: int = 0) -> Signal:
    t = T0 + timedelta(minutes=minute)
    return Signal(
        408065, Timeframe.M1, t, t + timedelta(minutes=1), "v3", direction, confidence, "live", "fs"
    )


def test_the_old_single_channel_keys_still_send_ops_alerts_to_webhook_and_telegram() -> None:
    settings = load_settings(
        environ={
            "TICKWISE__MONITORING__ALERTS__ENABLED": "true",
            "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": "https://hooks.example/abc",
            "TICKWISE__MONITORING__ALERTS__TELEGRAM_BOT_TOKEN": "123:SECRET",
            "TICKWISE__MONITORING__ALERTS__TELEGRAM_CHAT_ID": "42",
        }
    )
    d = make_alerts(settings, environ={})
    assert sorted(d.channels) == ["telegram", "webhook"]
    assert targets(d.routes, Alert("critical", "db", "down")) == ["webhook", "telegram"]
    assert targets(d.routes, Alert("info", "s", "BUY", kind="signal")) == []  # signals need a route
    assert "SECRET" not in repr(d.sinks) and "abc" not in repr(d.sinks)


def test_alerts_disabled_means_no_channels_and_nothing_queued() -> None:
    d = make_alerts(load_settings(environ={}), environ={})
    assert d.channels == {}
    assert not d.notify("critical", "db", "down")
    assert not d.notify_signal(sig())


def test_channels_and_routes_come_from_yaml_and_smtp_credentials_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(ROUTED)
    settings = load_settings(tmp_path, environ={"SLACK_URL": "https://hooks.slack.com/services/T/B/XYZ"})
    d = make_alerts(settings, environ={"PAGER_SMTP_USER": "bot", "PAGER_SMTP_PASSWORD": "pw-from-env"})
    assert sorted(d.channels) == ["pager", "trading", "webhook"]  # 'unset' has no URL: skipped, logged
    assert isinstance(d.channels["trading"].sink, SlackSink)
    pager = d.channels["pager"].sink
    assert isinstance(pager, EmailSink) and pager.port == 2525 and not pager.starttls
    assert pager._username == "bot" and pager._password == "pw-from-env"
    assert targets(d.routes, Alert("info", "s", "BUY", kind="signal")) == ["trading"]
    assert targets(d.routes, Alert("warning", "feed", "down")) == ["webhook"]
    assert targets(d.routes, Alert("critical", "db", "down")) == ["webhook", "pager"]
    assert d.signal_filter == SignalFilter(min_confidence=0.6, throttle_s=0.0, dedup_s=3600.0)
    assert set(channel_secrets(settings)) == {
        "http://ops.local/hook",
        "https://hooks.slack.com/services/T/B/XYZ",
    }
    assert "XYZ" not in repr(d.sinks)


def test_the_signal_threshold_defaults_to_the_models_threshold() -> None:
    settings = load_settings(environ={"TICKWISE__MODEL_TRAINING__SIGNAL_THRESHOLD": "0.62"})
    filt = make_alerts(settings, environ={}).signal_filter
    assert filt is not None and filt.min_confidence == 0.62


def test_a_route_naming_an_unknown_channel_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "monitoring:\n  alerts:\n    routes:\n      - {kind: signal, channels: [slakc]}\n"
    )
    with pytest.raises(ConfigError, match=r"unknown channel.*slakc"):
        load_settings(tmp_path, environ={})


def test_a_dispatcher_refuses_routes_to_channels_it_does_not_have() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        AlertDispatcher([WebhookSink("http://x/y", name="hook")], routes=[Route("signal", ("nope",))])


def test_redacted_urls_keep_only_scheme_host_and_port() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/XX") == "https://hooks.slack.com/***"
    assert redact_url("http://user:pw@127.0.0.1:8080/h?token=1") == "http://127.0.0.1:8080/***"
    assert redact_url("https://example.com") == "https://example.com"
    assert redact_url("not a url") == "***"


def test_the_gate_forgets_entries_that_aged_out() -> None:
    gate = Gate(throttle_s=1.0, dedup_s=2.0)
    for i in range(10_001):
        gate.record(f"k{i}", i, 0.0)
    gate.record("late", "late", 100.0)
    assert gate.check("k1", 1, 100.0) is None
    assert len(gate._by_content) == 1


def test_a_stale_signal_is_not_announced_on_the_market_clock() -> None:
    d = AlertDispatcher(
        [WebhookSink("http://127.0.0.1:9/hook", name="hook")],
        routes=[Route("signal", ("hook",))],
        signals=SignalFilter(max_age_s=120.0),
    )
    d.market_clock = lambda: T0 + timedelta(minutes=10)
    assert not d.notify_signal(sig(minute=0))  # available 09 minutes ago
    assert d.notify_signal(sig(minute=8))  # available 1 minute ago
    assert d.suppressed == {"stale": 1}


async def test_signals_are_announced_only_after_their_rows_are_committed() -> None:
    announced: list[Signal] = []

    class Recorder:
        def notify_signal(self, signal: Signal) -> bool:
            announced.append(signal)
            return True

    calls = 0

    async def flaky_write(rows: list[PendingSignal]) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return len(rows)

    write = notify_after_commit(flaky_write, Recorder())
    rows = [PendingSignal(sig(), 0.0)]
    with pytest.raises(ConnectionError):
        await write(rows)
    assert announced == []
    assert await write(rows) == 1
    assert announced == [rows[0].signal]


def test_a_reload_changes_routes_and_filters_in_place_and_says_what_changed(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(ROUTED)
    env = {"SLACK_URL": "https://hooks.slack.com/services/T/B/XYZ"}
    old = load_settings(tmp_path, environ=env)
    d = make_alerts(old, environ={})
    now = [0.0]
    d.clock = lambda: now[0]
    assert d.notify_signal(sig(minute=0))
    assert reload_alerts(d, old, old) == []

    (tmp_path / "config.yaml").write_text(
        ROUTED.replace("min_confidence: 0.6", "min_confidence: 0.8").replace(
            "{kind: ops, channels: [webhook]}", "{kind: ops, channels: [webhook], min_priority: warning}"
        )
    )
    new = load_settings(tmp_path, environ=env)
    changes = reload_alerts(d, old, new)
    assert len(changes) == 2
    assert changes[0].startswith("alert routes: ") and "ops>=warning:webhook" in changes[0]
    assert changes[1].startswith("signal alerts: ") and "min_confidence=0.8" in changes[1]
    assert not d.notify_signal(sig(+1, 0.7, minute=1))  # now below the threshold
    assert not d.notify_signal(sig(+1, 0.9, minute=0))  # dedup memory survived the reload
    assert targets(d.routes, Alert("info", "feed", "up")) == []


def test_a_reload_that_changes_channels_asks_for_a_restart(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(ROUTED)
    old = load_settings(tmp_path, environ={"SLACK_URL": "https://a.example/1"})
    new = load_settings(tmp_path, environ={"SLACK_URL": "https://a.example/2"})
    d = make_alerts(old, environ={})
    assert reload_alerts(d, old, new) == ["monitoring.alerts channels (or enabled) changed: restart to apply"]


def test_a_reload_with_a_route_to_an_unset_channel_changes_nothing(tmp_path: Path) -> None:
    d = AlertDispatcher([WebhookSink("http://x/y", name="hook")], routes=[Route("signal", ("hook",))])
    with pytest.raises(ValueError, match="'ghost'"):
        d.reconfigure(
            routes=[Route("signal", ("ghost",))], min_priority="info", throttle_s=1, dedup_s=1, signals=None
        )
    assert d.routes == [Route("signal", ("hook",))] and d.min_priority == "warning"
