"""The simulator in a child process: config round trip, ready handshake, shared clock, clean exit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta

import httpx
import pytest

from tickwise.adapters.kite.simulator import SimulatorConfig, parse_faults
from tickwise.adapters.kite.simulator.process import config_from_json, config_to_json, spawn_simulator
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.time import IST

START = datetime(2026, 3, 2, 9, 14, 50, tzinfo=IST)


def test_a_config_survives_the_trip_to_the_child_with_its_faults_and_start() -> None:
    config = SimulatorConfig(
        rest_port=0,
        ws_port=0,
        speed=60.0,
        start=START,
        faults=parse_faults("+3m abort; 10:20 stall 8s"),
        heartbeat_interval=0.2,
        rate_limits={"historical": 9, "quote": 1, "other": 10},
    )
    back = config_from_json(config_to_json(config))
    assert back == config


def test_a_config_with_another_calendar_is_refused_for_a_child_process() -> None:
    with pytest.raises(ValueError, match="NSE"):
        config_to_json(SimulatorConfig(calendar=SessionCalendar(holidays=[])))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_spawned_simulator_answers_shares_its_clock_and_is_gone_after_the_block() -> None:
    config = SimulatorConfig(rest_port=0, ws_port=0, speed=60.0, start=START)
    async with spawn_simulator(config) as sim:
        assert sim.pid != os.getpid() and _alive(sim.pid)
        # The parent's clock reads the child's simulated time (same anchor, system-wide monotonic clock).
        assert START <= sim.clock.now() < START + timedelta(minutes=5)
        async with httpx.AsyncClient() as http:
            login = await http.get(f"{sim.rest_url}/connect/login", params={"v": 3, "api_key": sim.api_key})
        assert login.status_code == 302
        pid = sim.pid
    for _ in range(100):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)


async def test_the_child_stops_by_itself_when_its_parent_goes_away() -> None:
    # A parent killed with SIGKILL cannot stop its child: the end of the child's stdin is the cue.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickwise.adapters.kite.simulator.process",
        config_to_json(SimulatorConfig(rest_port=0, ws_port=0, start=START)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    assert ready["rest_url"].startswith("http://127.0.0.1:") and ready["ws_url"].startswith("ws://127.0.0.1:")
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 10) == 0
