"""The simulator's ticker stream has no hole after the last-value-cache packet of a subscription.

The live pipeline treats ticks after the LVC packet of a (re)subscription as complete: the simulator must
stream every snapshot after it, however the subscription falls relative to its streaming cycles (before
the first cycle, between two cycles, or re-sent as a ``mode`` message on a subscribed token, which Kite
answers by changing the mode only).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from websockets.asyncio.client import ClientConnection, connect

from tickwise.adapters.kite.codec import decode_frame
from tickwise.adapters.kite.simulator import SimulatorConfig, run_simulator
from tickwise.adapters.kite.simulator.server import RunningSimulator
from tickwise.adapters.kite.ticker import KiteTicker
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

INFY, TCS = 408065, 2953217
START = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


async def open_ws(sim: RunningSimulator) -> ClientConnection:
    return await connect(sim.ws_url_for(sim.issue_access_token()), additional_headers={"X-Kite-Version": "3"})


async def collect(ws: ClientConnection, seconds: float) -> list[Tick]:
    ticks: list[Tick] = []
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), timeout=left)
        except TimeoutError:
            break
        if isinstance(msg, bytes) and len(msg) > 1:
            ticks += decode_frame(msg)
    return ticks


def missing_seconds(sim: RunningSimulator, ticks: list[Tick], token: int) -> list[datetime]:
    """Snapshot instants between the first and last stamped tick of ``token`` that never arrived."""
    stamps = [t.exchange_timestamp for t in ticks if t.instrument_token == token and t.exchange_timestamp]
    assert len(stamps) >= 2, f"too few stamped ticks of {token}: {len(stamps)}"
    seen = set(stamps)
    expected = sim.market.snapshots_between(token, stamps[0], stamps[-1], spikes=False)
    return [t.exchange_timestamp for t in expected if t.exchange_timestamp not in seen]


async def test_a_subscription_made_before_the_first_stream_cycle_gets_every_later_snapshot() -> None:
    # A long cycle makes sure the subscription lands before the first one (150 simulated seconds).
    cfg = SimulatorConfig(rest_port=0, ws_port=0, start=START, speed=150.0, stream_interval=1.0)
    async with run_simulator(cfg) as sim, await open_ws(sim) as ws:
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY, TCS]}))
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY, TCS]]}))
        ticks = await collect(ws, 2.6)
    for token in (INFY, TCS):
        assert missing_seconds(sim, ticks, token) == []


async def test_a_mode_message_for_a_subscribed_token_skips_no_snapshot() -> None:
    cfg = SimulatorConfig(rest_port=0, ws_port=0, start=START, speed=150.0, stream_interval=0.1)
    async with run_simulator(cfg) as sim, await open_ws(sim) as ws:
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY]}))
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY]]}))
        ticks = await collect(ws, 0.5)
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY]]}))  # what a reconnect replays
        ticks += await collect(ws, 0.5)
        await ws.send(json.dumps({"a": "mode", "v": ["quote", [INFY]]}))  # a real mode change and back
        await collect(ws, 0.3)
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY]]}))
        after = await collect(ws, 0.5)
    for stretch in (ticks, after):
        # Quote packets (the subscribe answer, frames in flight at a switch) carry no exchange time.
        stretch = [t for t in stretch if t.mode == "full"]
        stamps = [t.exchange_timestamp for t in stretch]
        assert stamps == sorted(stamps)  # the mode answer never jumps ahead of the stream
        assert missing_seconds(sim, stretch, INFY) == []


async def test_the_ticker_receives_every_snapshot_after_its_first_connection_and_after_a_reconnect() -> None:
    cfg = SimulatorConfig(rest_port=0, ws_port=0, start=START, speed=150.0, stream_interval=0.25)
    async with run_simulator(cfg) as sim:
        ticker = KiteTicker(sim.api_key, sim.issue_access_token(), root=sim.ws_url, now=sim.clock.now)
        async with ticker:
            await ticker.subscribe([INFY, TCS], "full")
            await ticker.wait_connected(timeout_s=10.0)
            await asyncio.sleep(1.0)
            first: list[Tick] = []
            while not ticker.queue.empty():
                first.append(ticker.queue.get_nowait())
            for client in list(sim.ticker.clients):
                client.ws.transport.abort()
            await asyncio.sleep(0.2)
            await ticker.wait_connected(timeout_s=10.0)
            while not ticker.queue.empty():  # ticks of the old connection still queued
                ticker.queue.get_nowait()
            await asyncio.sleep(1.0)
            second: list[Tick] = []
            while not ticker.queue.empty():
                second.append(ticker.queue.get_nowait())
        assert ticker.stats.reconnects == 1
    for ticks in (first, second):
        for token in (INFY, TCS):
            assert missing_seconds(sim, ticks, token) == []
