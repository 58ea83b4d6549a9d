"""A simulated live session announces its committed signals on a local webhook and a local SMTP server.

One quick historical run (3 instruments, a few days) provides the model; the live run is a few minutes
of market time at 150x with signal alerts routed to a real aiohttp receiver and a real aiosmtpd server,
and operational alerts to another path of the receiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
from notify_receivers import http_receiver, smtp_server

from tickwise.bootstrap.historical import open_historical
from tickwise.bootstrap.live import LiveOptions, run_live
from tickwise.config import Settings, load_settings
from tickwise.observability.hooks import NullHooks

pytestmark = [pytest.mark.slow, pytest.mark.db]


def env(db_url: str, data: Path) -> dict[str, str]:
    return {
        "TICKWISE_DATA_DIR": str(data),
        "DATABASE_URL": db_url,
        "TICKWISE__TRADING__SYMBOLS": '["INFY","TCS","RELIANCE"]',
        "TICKWISE__TRADING__BACKFILL_DAYS": "5",
        "TICKWISE__MODEL_TRAINING__TRIALS": "1",
        "TICKWISE__MODEL_TRAINING__FOLDS": "2",
        "TICKWISE__MODEL_TRAINING__NUM_BOOST_ROUND": "20",
        "TICKWISE__MONITORING__METRICS_PORT": "0",
        "TICKWISE__LIVE__SPILL_DIR": str(data / "spill"),
    }


@pytest_asyncio.fixture(loop_scope="session")
async def trained(clean_db: object, db_url: str, tmp_path: Path) -> AsyncIterator[Path]:
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings = load_settings(environ=env(db_url, tmp_path), environment="test")
    with Reporter(quiet=True) as reporter:
        await run_historical(settings, reporter, url=db_url)
    yield tmp_path


async def test_a_live_session_announces_its_committed_signals_on_a_webhook_and_by_email(
    trained: Path, db_url: str
) -> None:
    async with http_receiver() as http:
        with smtp_server() as smtp:
            settings: Settings = load_settings(
                environ={
                    **env(db_url, trained),
                    # A low threshold so that a few minutes of a quickly trained model give signals.
                    "TICKWISE__MODEL_TRAINING__SIGNAL_THRESHOLD": "0.05",
                    "TICKWISE__MONITORING__ALERTS__ENABLED": "true",
                    "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": http.url("/ops"),
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__HOOK__TYPE": "webhook",
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__HOOK__URL": http.url("/signals"),
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__TYPE": "email",
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__HOST": smtp.host,
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__PORT": str(smtp.port),
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__STARTTLS": "false",
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__SENDER": "tickwise@localhost",
                    "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__TO": "[trader@localhost]",
                    "TICKWISE__MONITORING__ALERTS__ROUTES": (
                        "[{kind: signal, channels: [hook, mail]}, {kind: ops, channels: [webhook]}]"
                    ),
                    "TICKWISE__MONITORING__ALERTS__SIGNALS__THROTTLE_S": "0",
                },
                environment="test",
            )
            report = await run_live(
                settings, LiveOptions(until="+5m", speed=150, url=db_url, metrics=False), hooks=NullHooks()
            )
            posted = http.got("/signals")
            ops = http.got("/ops")
            mails = list(smtp.messages)

    assert report.ended_by == "until" and report.signals > 0
    async with open_historical(settings, url=db_url) as ctx, ctx.pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT instrument_token, time, direction FROM signals WHERE mode = 'live' AND direction <> 0"
        )
    expected = {(int(r["instrument_token"]), r["time"], int(r["direction"])) for r in stored}
    assert expected, "the low threshold must give non-flat live signals"
    announced = [
        (
            p["signal"]["instrument_token"],
            datetime.fromisoformat(p["signal"]["time"]),
            p["signal"]["direction"],
        )
        for p in posted
    ]
    # Every committed non-flat signal was announced once, and nothing else (the ops channel is separate).
    assert len(announced) == len(set(announced))
    assert set(announced) == expected
    assert all(p["kind"] == "signal" for p in posted)
    assert len(mails) == len(posted)
    assert {m["Subject"] for m in mails} == {f"[SIGNAL] tickwise: {p['message']}" for p in posted}
    # Operational alerts of the session (the start-up gap, if any) went to the ops channel only.
    assert all("signal" not in p and p.get("kind", "ops") == "ops" for p in ops)
