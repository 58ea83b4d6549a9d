"""Alert dispatch: priority filter, per-key throttling, dedup, delivery failures never raise."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tickwise.adapters.alerts import Alert, AlertDispatcher, TelegramSink, WebhookSink


class ListSink:
    name = "list"

    def __init__(self, fail: bool = False) -> None:
        self.got: list[Alert] = []
        self.fail = fail

    async def send(self, alert: Alert) -> None:
        if self.fail:
            raise RuntimeError("down")
        self.got.append(alert)

    async def aclose(self) -> None:
        pass


def dispatcher(sink: ListSink, now: list[float], **kw: object) -> AlertDispatcher:
    return AlertDispatcher([sink], clock=lambda: now[0], **kw)  # type: ignore[arg-type]


async def test_alerts_below_the_minimum_priority_are_not_sent() -> None:
    sink, now = ListSink(), [0.0]
    d = dispatcher(sink, now, min_priority="warning")
    assert not d.notify("info", "feed", "feed up")
    assert d.notify("warning", "feed", "feed down")
    await d.drain()
    assert [a.message for a in sink.got] == ["feed down"]
    assert d.suppressed == {"priority": 1}


async def test_one_key_is_throttled_but_critical_alerts_get_a_shorter_window() -> None:
    sink, now = ListSink(), [0.0]
    d = dispatcher(sink, now, throttle_s=60.0, dedup_s=0.0)
    assert d.notify("warning", "db", "slow 1")
    now[0] = 10.0
    assert not d.notify("warning", "db", "slow 2")
    assert d.notify("warning", "feed", "other key")
    now[0] = 20.0
    assert d.notify("critical", "db", "db down")  # 20 s > 60/4
    now[0] = 90.0
    assert d.notify("warning", "db", "slow 3")
    await d.drain()
    assert [a.message for a in sink.got] == ["slow 1", "other key", "db down", "slow 3"]
    assert d.suppressed["throttled"] == 1


async def test_the_same_alert_is_deduplicated_within_the_dedup_window() -> None:
    sink, now = ListSink(), [0.0]
    d = dispatcher(sink, now, throttle_s=1.0, dedup_s=100.0)
    assert d.notify("warning", "gap", "feed gap 10:05")
    now[0] = 50.0
    assert not d.notify("warning", "gap", "feed gap 10:05")
    assert d.notify("warning", "gap", "feed gap 10:20")
    now[0] = 200.0
    assert d.notify("warning", "gap", "feed gap 10:05")
    assert d.suppressed == {"duplicate": 1}


async def test_a_failing_sink_is_counted_and_never_raises() -> None:
    d = AlertDispatcher([ListSink(fail=True)])
    d.notify("critical", "x", "boom")
    await d.drain()
    assert d.suppressed == {"send_failed": 1}
    assert list(d.sent) == []


async def test_webhook_and_telegram_sinks_post_the_alert() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"ok": True})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    alert = Alert("critical", "database", "database unreachable")
    await WebhookSink("http://hooks.local/tickwise", client=client).send(alert)
    await TelegramSink("123:SECRET", "42", api_root="http://tg.local", client=client).send(alert)
    await client.aclose()
    assert seen[0] == ("/tickwise", {**alert.as_json()})
    assert seen[1][0] == "/bot123:SECRET/sendMessage"
    assert seen[1][1]["chat_id"] == "42" and "database unreachable" in seen[1][1]["text"]


async def test_a_telegram_error_does_not_leak_the_bot_token() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(401)))
    sink = TelegramSink("123:SECRET", "42", api_root="http://tg.local", client=client)
    try:
        await sink.send(Alert("warning", "k", "m"))
    except RuntimeError as exc:
        assert "SECRET" not in str(exc) and "401" in str(exc)
    else:
        raise AssertionError("expected a RuntimeError")
    finally:
        await client.aclose()
