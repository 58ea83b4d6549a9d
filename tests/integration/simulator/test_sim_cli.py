"""`tickwise simulate` starts both servers, prints their URLs and the api_key, and serves until stopped."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import httpx


async def test_simulate_command_prints_urls_and_serves_the_login_redirect() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickwise.cli.main", "simulate", "--port", "0", "--ws-port", "0",
        "--start", "2026-11-20 10:00", "--faults", "10:30 abort; +60s reject 2 429",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 60)).decode() for _ in range(4)]
        text = "".join(lines)
        rest = re.search(r"REST\s+(http://127\.0\.0\.1:\d+)", text)
        assert rest and re.search(r"WebSocket ws://127\.0\.0\.1:\d+", text), text
        assert "api_key tickwise-sim" in text and "2 scripted faults" in text
        assert "at 60x" in text  # no --speed: broker.simulator.speed from the configuration
        async with httpx.AsyncClient(base_url=rest.group(1)) as http:
            r = await http.get("/connect/login", params={"v": 3, "api_key": "tickwise-sim"})
        assert r.status_code == 302 and "request_token=" in r.headers["location"]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)


async def test_simulate_speed_follows_the_configuration_when_not_given() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickwise.cli.main", "simulate", "--port", "0", "--ws-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TICKWISE__BROKER__SIMULATOR__SPEED": "7.5"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 60)).decode() for _ in range(4)]
        assert "at 7.5x" in lines[3], lines
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)


async def test_simulate_rejects_a_bad_fault_script_with_exit_code_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tickwise.cli.main", "simulate", "--port", "0", "--ws-port", "0",
        "--faults", "10:05 explode",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "unknown action 'explode'" in stderr.decode()
