"""`tickwise alerts test`: one test message per configured channel, each result on its own line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from notify_receivers import http_receiver, smtp_server

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        TICKWISE, *args, env=full, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_alerts_test_reaches_every_channel_and_reports_the_broken_one_without_its_url() -> None:
    async with http_receiver() as http:
        with smtp_server() as smtp:
            env = {
                "TICKWISE__MONITORING__ALERTS__ENABLED": "true",
                "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": http.url("/ops"),
                "TICKWISE__MONITORING__ALERTS__CHANNELS__TRADING__TYPE": "slack",
                "TICKWISE__MONITORING__ALERTS__CHANNELS__TRADING__URL": http.url("/fail/SECRETPATH"),
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__TYPE": "email",
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__HOST": smtp.host,
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__PORT": str(smtp.port),
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__STARTTLS": "false",
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__SENDER": "tickwise@localhost",
                "TICKWISE__MONITORING__ALERTS__CHANNELS__MAIL__TO": "[me@localhost]",
                "TICKWISE__MONITORING__ALERTS__ROUTES": (
                    "[{kind: signal, channels: [trading]}, {kind: ops, channels: [webhook]},"
                    " {kind: ops, channels: [mail], min_priority: critical}]"
                ),
            }
            code, out, err = await run_cli("alerts", "test", env=env)
            only_code, only_out, _ = await run_cli("alerts", "test", "--channel", "webhook", env=env)
            posted = http.got("/ops")
            mails = list(smtp.messages)
    assert code == 1, err
    assert out.splitlines() == [
        "webhook: delivered; receives ops>=info",
        "trading: FAILED: trading answered HTTP 500; receives signal>=info",
        "mail: delivered; receives ops>=critical",
    ]
    assert "SECRETPATH" not in out + err
    assert only_code == 0 and only_out.splitlines() == ["webhook: delivered; receives ops>=info"]
    assert len(posted) == 2 and posted[0]["key"] == "test"
    assert len(mails) == 1 and "this channel works" in mails[0]["Subject"]


async def test_alerts_test_without_channels_says_how_to_set_one_up() -> None:
    code, _, err = await run_cli("alerts", "test", env={})
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1
    assert "monitoring.alerts.enabled: true" in lines[0]
