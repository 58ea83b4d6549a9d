"""Signals and operational alerts reach real local channels: an HTTP receiver and an SMTP server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from loguru import logger
from notify_receivers import HttpReceiver, SmtpServer, http_receiver, self_signed_tls, smtp_server

from tickwise.adapters.alerts import (
    Alert,
    AlertDispatcher,
    DeliveryError,
    EmailSink,
    Route,
    SignalFilter,
    SlackSink,
    TelegramSink,
    WebhookSink,
)
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe

BAR = datetime(2026, 3, 10, 4, 35, tzinfo=UTC)  # 10:05 IST


def signal(direction: int = 1, confidence: float = 0.71, *, token: int = 408065, minute: int = 0) -> Signal:
    t = BAR + timedelta(minutes=minute)
    return Signal(
        token, Timeframe.M1, t, t + timedelta(minutes=1), "v3", direction, confidence, "live", "fs1"
    )


@pytest_asyncio.fixture
async def http() -> AsyncIterator[HttpReceiver]:
    async with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def email(smtp: SmtpServer, name: str = "mail") -> EmailSink:
    return EmailSink(
        smtp.host, smtp.port, "tickwise@localhost", ["trader@localhost"], name=name, timeout_s=5.0
    )


def dispatcher(sinks: list, routes: list[Route], **kw: object) -> AlertDispatcher:  # type: ignore[type-arg]
    kw.setdefault("signals", SignalFilter(min_confidence=0.55, throttle_s=300.0, dedup_s=3600.0))
    kw.setdefault("symbols", {408065: "INFY", 256265: "NIFTY 50"})
    return AlertDispatcher(sinks, routes=routes, send_timeout_s=1.0, **kw)  # type: ignore[arg-type]


async def test_a_live_signal_reaches_the_webhook_and_the_smtp_server(
    http: HttpReceiver, smtp: SmtpServer
) -> None:
    d = dispatcher(
        [WebhookSink(http.url("/signals"), name="hook"), email(smtp)],
        [Route("signal", ("hook", "mail"))],
    )
    d.start()
    assert d.notify_signal(signal(+1, 0.71))
    posted = await http.wait_for("/signals")
    mails = await smtp.wait_for(1)
    await d.close()

    body = posted[0]
    assert body["kind"] == "signal" and body["priority"] == "info"
    assert body["message"] == "BUY INFY 1m 10:05 IST, confidence 0.71 (model v3)"
    assert body["signal"]["instrument_token"] == 408065 and body["signal"]["direction"] == 1
    assert body["signal"]["time"] == BAR.isoformat()
    mail = mails[0]
    assert mail["Subject"] == "[SIGNAL] tickwise: BUY INFY 1m 10:05 IST, confidence 0.71 (model v3)"
    assert mail["To"] == "trader@localhost" and mail["X-Tickwise-Kind"] == "signal"
    assert "confidence: 0.71" in mail.get_content()
    assert d.stats() == {
        "hook": {"delivered": 1, "failed": 0, "queued": 0},
        "mail": {"delivered": 1, "failed": 0, "queued": 0},
    }


async def test_the_same_signal_twice_is_delivered_once(http: HttpReceiver) -> None:
    d = dispatcher([WebhookSink(http.url("/signals"), name="hook")], [Route("signal", ("hook",))])
    assert d.notify_signal(signal())
    assert not d.notify_signal(signal())  # the writer retried, or a repair replayed the bar
    await d.drain()
    await d.close()
    assert len(http.got("/signals")) == 1
    assert d.suppressed == {"duplicate": 1}


async def test_signals_of_one_instrument_are_throttled_but_a_reversal_and_other_instruments_go_through(
    http: HttpReceiver,
) -> None:
    now = [0.0]
    d = dispatcher(
        [WebhookSink(http.url("/s"), name="hook")], [Route("signal", ("hook",))], clock=lambda: now[0]
    )
    assert d.notify_signal(signal(+1, minute=0))
    now[0] = 60.0
    assert not d.notify_signal(signal(+1, minute=1))  # same instrument, same side, within 300 s
    assert d.notify_signal(signal(+1, token=256265, minute=1))  # another instrument
    now[0] = 120.0
    assert d.notify_signal(signal(-1, minute=2))  # a reversal is news
    now[0] = 500.0
    assert d.notify_signal(signal(-1, minute=8))  # the window has passed
    await d.drain()
    await d.close()
    sent = [(p["signal"]["tradingsymbol"], p["signal"]["direction"]) for p in http.got("/s")]
    assert sent == [("INFY", 1), ("NIFTY 50", 1), ("INFY", -1), ("INFY", -1)]
    assert d.suppressed == {"throttled": 1}


async def test_flat_and_low_confidence_signals_are_not_delivered(http: HttpReceiver) -> None:
    d = dispatcher([WebhookSink(http.url("/s"), name="hook")], [Route("signal", ("hook",))])
    assert not d.notify_signal(signal(0, 0.9))
    assert not d.notify_signal(signal(+1, 0.54))
    assert not d.notify_signal(signal(+1, float("nan")))
    await d.drain()
    await d.close()
    assert http.got("/s") == []
    assert d.suppressed == {"low_confidence": 2}


async def test_ops_alerts_and_signals_go_to_their_own_channels(http: HttpReceiver, smtp: SmtpServer) -> None:
    d = dispatcher(
        [
            SlackSink(http.url("/slack"), name="trading"),
            WebhookSink(http.url("/ops"), name="ops"),
            email(smtp, "pager"),
        ],
        [
            Route("signal", ("trading",)),
            Route("ops", ("ops",), "warning"),
            Route("ops", ("pager",), "critical"),
        ],
        min_priority="info",
    )
    assert d.notify_signal(signal())
    assert d.notify("warning", "feed", "feed down (reconnecting)")
    assert d.notify("critical", "database", "database unreachable")
    assert not d.notify("info", "session", "session started")  # no route takes info ops alerts
    await d.drain()
    await d.close()
    assert [p["text"].splitlines()[0] for p in http.got("/slack")] == [
        "[SIGNAL] tickwise: BUY INFY 1m 10:05 IST, confidence 0.71 (model v3)"
    ]
    assert [p["message"] for p in http.got("/ops")] == ["feed down (reconnecting)", "database unreachable"]
    assert [m["Subject"] for m in smtp.messages] == ["[CRITICAL] tickwise: database unreachable"]
    assert d.suppressed == {"no_channel": 1}


async def test_a_high_confidence_signal_can_be_routed_to_a_louder_channel_too(http: HttpReceiver) -> None:
    d = dispatcher(
        [WebhookSink(http.url("/all"), name="all"), WebhookSink(http.url("/loud"), name="loud")],
        [Route("signal", ("all",)), Route("signal", ("loud",), "warning")],
        signals=SignalFilter(min_confidence=0.55, high_confidence=0.8),
    )
    assert d.notify_signal(signal(+1, 0.6))
    assert d.notify_signal(signal(-1, 0.85, token=256265))
    await d.drain()
    await d.close()
    assert [p["signal"]["confidence"] for p in http.got("/all")] == [0.6, 0.85]
    assert [p["signal"]["confidence"] for p in http.got("/loud")] == [0.85]


async def test_a_failing_or_hanging_channel_does_not_block_the_others(
    http: HttpReceiver, smtp: SmtpServer
) -> None:
    secret_path = "/hang/T000/B000/SECRETPART"
    d = dispatcher(
        [
            WebhookSink(http.url("/fail/x"), name="broken"),
            WebhookSink(http.url(secret_path), name="hanging"),
            email(smtp),
        ],
        [Route("signal", ("broken", "hanging", "mail"))],
    )
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG", format="{message}")
    d.start()
    began = time.monotonic()
    for minute in range(3):
        assert d.notify_signal(signal(+1 if minute % 2 == 0 else -1, minute=minute))
    await smtp.wait_for(3, timeout_s=5.0)
    mail_done = time.monotonic() - began
    await d.close(timeout_s=5.0)
    logger.remove(sink_id)

    assert len(smtp.messages) == 3
    # The mail channel did not wait behind the hanging webhook (1 s send timeout per message, 3 messages).
    assert mail_done < 2.5
    assert d.stats()["broken"]["failed"] == 3
    assert d.stats()["hanging"]["failed"] >= 1
    assert d.suppressed["send_failed"] >= 4
    assert any("broken failed" in line and "HTTP 500" in line for line in lines)
    assert not any("SECRETPART" in line or "/fail/x" in line for line in lines)


async def test_a_full_channel_queue_drops_and_counts_without_blocking(http: HttpReceiver) -> None:
    d = AlertDispatcher(
        [WebhookSink(http.url("/s"), name="hook")],
        routes=[Route("signal", ("hook",))],
        signals=SignalFilter(min_confidence=0.5, throttle_s=0.0, dedup_s=0.0),
        queue_size=2,
    )
    results = [d.notify_signal(signal(minute=m)) for m in range(4)]
    await d.drain()
    await d.close()
    assert results == [True, True, False, False]
    assert d.suppressed == {"queue_full": 2}
    assert len(http.got("/s")) == 2


async def test_smtp_credentials_are_used_and_a_refused_login_is_reported_without_the_password() -> None:
    with smtp_server(credentials=("alerts", "pa55word")) as smtp:
        good = EmailSink(
            smtp.host, smtp.port, "t@localhost", ["o@localhost"], username="alerts", password="pa55word"
        )
        bad = EmailSink(
            smtp.host,
            smtp.port,
            "t@localhost",
            ["o@localhost"],
            name="bad",
            username="alerts",
            password="Wr0ngPa55",
        )
        d = AlertDispatcher([good, bad], min_priority="info")
        lines: list[str] = []
        sink_id = logger.add(lines.append, level="DEBUG", format="{message}")
        assert d.notify("critical", "database", "database unreachable")
        await d.drain()
        await d.close()
        logger.remove(sink_id)
        assert smtp.inbox.logins == ["alerts"]
        assert len(smtp.messages) == 1
        assert d.stats()["bad"]["failed"] == 1
        assert any("bad" in line and "answered 535" in line for line in lines)
        assert not any("Wr0ngPa55" in line or "pa55word" in line for line in lines)


async def test_starttls_required_but_not_offered_fails_with_a_clear_error(smtp: SmtpServer) -> None:
    sink = EmailSink(smtp.host, smtp.port, "t@localhost", ["o@localhost"], starttls=True)
    with pytest.raises(DeliveryError, match="SMTPNotSupportedError"):
        await sink.send(Alert("warning", "k", "m"))
    assert smtp.messages == []


async def test_starttls_encrypts_the_session_before_the_login(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed_tls(tmp_path)
    with smtp_server(credentials=("alerts", "pa55word"), tls=server_tls) as smtp:
        plain = EmailSink(smtp.host, smtp.port, "t@localhost", ["o@localhost"], name="plain")
        with pytest.raises(DeliveryError, match="answered 530"):  # the server requires STARTTLS first
            await plain.send(Alert("warning", "k", "m"))
        sink = EmailSink(
            smtp.host,
            smtp.port,
            "t@localhost",
            ["o@localhost"],
            starttls=True,
            username="alerts",
            password="pa55word",
            tls_context=client_tls,
        )
        await sink.send(Alert("critical", "database", "database unreachable"))
        assert smtp.inbox.logins == ["alerts"]
        assert [m["Subject"] for m in smtp.messages] == ["[CRITICAL] tickwise: database unreachable"]


async def test_a_hanging_smtp_server_ties_up_one_thread_of_its_own_not_the_shared_executor() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never greets
        port = silent.getsockname()[1]
        sink = EmailSink("127.0.0.1", port, "t@localhost", ["o@localhost"], name="hang", timeout_s=2.0)
        d = AlertDispatcher([sink], min_priority="info", throttle_s=0.0, dedup_s=0.0)
        d.send_timeout_s = 0.2
        for i in range(5):
            assert d.notify("critical", f"k{i}", f"message {i}")
        began = time.monotonic()
        await d.drain()
        assert time.monotonic() - began < 2.0  # five sends gave up after 0.2 s each
        assert d.stats()["hang"]["failed"] == 5
        smtp_threads = [t for t in threading.enumerate() if t.name.startswith("smtp-hang")]
        assert len(smtp_threads) == 1
        # The default executor (database, spill files) is free.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 1.0) == 42
        await d.close()


async def test_telegram_gets_the_signal_as_text_and_its_bot_token_stays_out_of_the_logs(
    http: HttpReceiver,
) -> None:
    good = TelegramSink("123:GOODSECRET", "42", name="phone", api_root=http.base)
    bad = TelegramSink("999:BADSECRET", "42", name="broken", api_root=http.url("/fail"))
    d = dispatcher([good, bad], [Route("signal", ("phone", "broken"))])
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG", format="{message}")
    assert d.notify_signal(signal(-1, 0.66))
    await d.drain()
    await d.close()
    logger.remove(sink_id)
    [message] = http.got("/bot123:GOODSECRET/sendMessage")
    assert message["chat_id"] == "42"
    assert (
        message["text"].splitlines()[0]
        == "[SIGNAL] tickwise: SELL INFY 1m 10:05 IST, confidence 0.66 (model v3)"
    )
    assert "tradingsymbol: INFY" in message["text"]
    assert any("broken failed" in line for line in lines)
    assert not any("SECRET" in line for line in lines)
