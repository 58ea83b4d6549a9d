"""The simulator enforces Kite's per-key limits as Kite does: 3 connections of at most 3,000 tokens.

(The single-message 3,001-token case and the 4th connection's 429 are in ``test_sim_websocket.py``.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tickwise.adapters.kite.simulator import RunningSimulator, SimulatorConfig, run_simulator
from tickwise.domain.time import IST

NIGHT = datetime(2026, 11, 20, 20, 0, tzinfo=IST)  # no streaming: only what the subscriptions answer
TOO_MANY = {"type": "error", "data": "Can't subscribe to more than 3000 instruments."}


def config() -> SimulatorConfig:
    return SimulatorConfig(rest_port=0, ws_port=0, start=NIGHT, speed=1.0, heartbeat_interval=0.2)


async def open_ws(sim: RunningSimulator, token: str) -> ClientConnection:
    return await connect(sim.ws_url_for(token), additional_headers={"X-Kite-Version": "3"})


async def texts(ws: ClientConnection, seconds: float) -> list[object]:
    out: list[object] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        if isinstance(msg, str):
            out.append(json.loads(msg))
    return out


async def test_the_3001st_token_is_refused_even_when_subscribed_in_a_later_message() -> None:
    async with run_simulator(config()) as sim:
        ws = await open_ws(sim, sim.issue_access_token())
        await ws.send(json.dumps({"a": "subscribe", "v": list(range(1, 3001))}))
        assert await texts(ws, 0.6) == []  # exactly 3,000: accepted
        await ws.send(json.dumps({"a": "mode", "v": ["full", [5000]]}))  # mode subscribes it: the 3,001st
        assert await texts(ws, 0.6) == [TOO_MANY]
        await ws.send(json.dumps({"a": "subscribe", "v": [1, 2]}))  # already held: no error
        assert await texts(ws, 0.6) == []
        await ws.close()


async def test_three_connections_hold_3000_tokens_each_and_a_fourth_is_refused_with_429() -> None:
    async with run_simulator(config()) as sim:
        token = sim.issue_access_token()
        conns = [await open_ws(sim, token) for _ in range(3)]
        for i, ws in enumerate(conns):
            await ws.send(json.dumps({"a": "subscribe", "v": list(range(1 + 3000 * i, 3001 + 3000 * i))}))
        for ws in conns:
            assert await texts(ws, 0.5) == []  # 9,000 tokens over three connections
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(sim, token)
        assert refused.value.response.status_code == 429
        for ws in conns:
            assert ws.state.name == "OPEN"  # the refusal leaves the open connections alone
            await ws.close()
