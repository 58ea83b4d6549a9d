"""The simulator's ticker WebSocket, driven with the plain ``websockets`` client and our codec."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import datetime, timedelta

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tickwise.adapters.kite.codec import DecodeStats, decode_frame
from tickwise.adapters.kite.simulator import SPIKE_THRESHOLD, SimulatorConfig, run_simulator
from tickwise.adapters.kite.simulator.server import RunningSimulator
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

INFY, NIFTY = 408065, 256265
IN_SESSION = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


def config(**kw: object) -> SimulatorConfig:
    base: dict[str, object] = dict(rest_port=0, ws_port=0, start=IN_SESSION, speed=1.0, stream_interval=0.05)
    base.update(kw)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


async def recv_ticks(ws: ClientConnection, until: float, stats: DecodeStats | None = None) -> list[Tick]:
    ticks: list[Tick] = []
    while (left := until - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), timeout=left)
        except TimeoutError:
            break
        if isinstance(msg, bytes):
            ticks += decode_frame(msg, stats or DecodeStats())
    return ticks


async def open_ws(sim: RunningSimulator, token: str | None = None) -> ClientConnection:
    return await connect(
        sim.ws_url_for(token or sim.issue_access_token()), additional_headers={"X-Kite-Version": "3"}
    )


async def test_full_mode_subscription_gets_the_lvc_then_streams_ticks_with_depth() -> None:
    async with run_simulator(config(speed=5.0)) as sim, await open_ws(sim) as ws:
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY, NIFTY]}))
        lvc = decode_frame(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[arg-type]
        assert {t.instrument_token: t.mode for t in lvc} == {INFY: "quote", NIFTY: "quote"}
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY, NIFTY]]}))
        ticks = await recv_ticks(ws, time.monotonic() + 1.5)
    full = [t for t in ticks if t.instrument_token == INFY]
    assert len(full) >= 3 and all(t.mode == "full" for t in full)
    assert all(t.depth is not None and len(t.depth.buy) == 5 and len(t.depth.sell) == 5 for t in full)
    assert all(t.depth.buy[0].price < t.depth.sell[0].price for t in full if t.depth)
    stamps = [t.exchange_timestamp for t in full]
    assert all(s is not None and s.tzinfo is not None for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    index = [t for t in ticks if t.instrument_token == NIFTY]
    assert index and all(not t.tradable and t.mode == "full" for t in index)


async def test_upgrade_is_refused_with_403_for_a_bad_token_and_429_beyond_three_connections() -> None:
    async with run_simulator(config()) as sim:
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(sim, token="not-a-token")
        assert refused.value.response.status_code == 403
        token = sim.issue_access_token()
        conns = [await open_ws(sim, token) for _ in range(3)]
        with pytest.raises(InvalidStatus) as too_many:
            await open_ws(sim, token)
        assert too_many.value.response.status_code == 429
        await conns[0].close()
        await asyncio.sleep(0.1)
        conns[0] = await open_ws(sim, token)  # a slot freed by a close can be reused
        for c in conns:
            await c.close()


async def test_idle_connection_receives_one_byte_heartbeats_outside_the_session() -> None:
    night = datetime(2026, 11, 20, 20, 0, tzinfo=IST)
    async with run_simulator(config(start=night, heartbeat_interval=0.2)) as sim, await open_ws(sim) as ws:
        await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY]]}))
        (lvc,) = decode_frame(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[arg-type]
        assert lvc.exchange_timestamp == datetime(2026, 11, 20, 15, 29, 59, tzinfo=IST)  # stale LVC
        frames = [await asyncio.wait_for(ws.recv(), 2) for _ in range(3)]
    assert frames == [b"\x00"] * 3


async def test_subscribing_more_than_3000_tokens_sends_a_text_error_and_keeps_the_connection() -> None:
    night = datetime(2026, 11, 20, 20, 0, tzinfo=IST)
    async with run_simulator(config(start=night)) as sim, await open_ws(sim) as ws:
        await ws.send(json.dumps({"a": "subscribe", "v": list(range(1, 3002))}))
        messages = [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]
        texts = [json.loads(m) for m in messages if isinstance(m, str)]
        assert texts == [{"type": "error", "data": "Can't subscribe to more than 3000 instruments."}]
        await ws.send(json.dumps({"a": "unsubscribe", "v": [1, 2]}))
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY]}))  # room again: INFY's LVC arrives
        frame = await asyncio.wait_for(ws.recv(), 5)
        while frame == b"\x00":
            frame = await asyncio.wait_for(ws.recv(), 5)
        assert [t.instrument_token for t in decode_frame(frame)] == [INFY]  # type: ignore[arg-type]


async def test_candles_rebuilt_from_websocket_ticks_equal_rest_candles() -> None:
    async with run_simulator(config(speed=240.0, stream_interval=0.1)) as sim:
        async with await open_ws(sim) as ws:
            await ws.send(json.dumps({"a": "mode", "v": ["full", [INFY]]}))
            deadline = time.monotonic() + 2.0
            ticks = await recv_ticks(ws, deadline)
        now = sim.clock.now()
        rest = sim.market.candles(INFY, 1, IN_SESSION, now, now)
    valid: list[Tick] = []
    for t in ticks:
        if valid and abs(t.last_price / valid[-1].last_price - 1) > SPIKE_THRESHOLD:
            continue
        valid.append(t)
    by_minute: dict[datetime, list[Tick]] = {}
    for t in valid:
        assert t.exchange_timestamp is not None
        by_minute.setdefault(t.exchange_timestamp.replace(second=0), []).append(t)
    minutes = sorted(by_minute)
    rebuilt = []
    # the first minute may miss ticks from before the subscription; the last may still have been forming
    for prev, minute in itertools.pairwise(minutes[:-1]):
        b = by_minute[minute]
        assert minute + timedelta(minutes=1) <= now
        p = [t.last_price for t in b]
        rebuilt.append(
            (
                minute,
                p[0],
                max(p),
                min(p),
                p[-1],
                (b[-1].volume_traded or 0) - (by_minute[prev][-1].volume_traded or 0),
            )
        )
    assert len(rebuilt) >= 3
    expected = {c[0]: c for c in rest}
    assert rebuilt == [expected[c[0]] for c in rebuilt]


async def test_scripted_faults_reject_close_abort_and_corrupt_the_stream() -> None:
    async with run_simulator(config(speed=5.0)) as sim:
        token = sim.issue_access_token()
        sim.faults.inject("reject", 1, 500)
        with pytest.raises(InvalidStatus) as rejected:
            await open_ws(sim, token)
        assert rejected.value.response.status_code == 500

        ws = await open_ws(sim, token)
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY]}))
        await ws.recv()
        sim.faults.inject("malformed")
        stats = DecodeStats()
        await recv_ticks(ws, time.monotonic() + 1.0, stats)
        assert stats["truncated"] == 1

        sim.faults.inject("close", 1011)
        with pytest.raises(ConnectionClosed) as closed:
            await recv_ticks(ws, time.monotonic() + 3)
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011

        ws = await open_ws(sim, token)
        await ws.send(json.dumps({"a": "subscribe", "v": [INFY]}))
        await ws.recv()
        stall_start = time.monotonic()
        sim.faults.inject("stall", 1.5)
        while True:  # drain what was sent before the stall took effect
            try:
                await asyncio.wait_for(ws.recv(), 0.1)
            except TimeoutError:
                break
        await asyncio.wait_for(ws.recv(), 5)
        assert time.monotonic() - stall_start > 1.2  # nothing at all, not even heartbeats, during the stall

        sim.faults.inject("abort")
        with pytest.raises(ConnectionClosed) as aborted:
            for _ in range(100):
                await asyncio.wait_for(ws.recv(), 3)
        assert aborted.value.rcvd is None  # no close frame: the TCP connection was dropped


async def next_data_frame(ws: ClientConnection) -> bytes:
    while True:
        msg = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(msg, bytes) and len(msg) > 1:
            return msg


async def test_frame_faults_duplicate_add_unknown_packets_negative_prices_and_restart() -> None:
    async with run_simulator(config(speed=5.0)) as sim:
        token = sim.issue_access_token()
        ws = await open_ws(sim, token)
        await ws.send(json.dumps({"a": "mode", "v": ["ltp", [INFY, NIFTY]]}))
        await next_data_frame(ws)

        sim.faults.inject("unknown_length")
        stats = DecodeStats()
        decode_frame(await next_data_frame(ws), stats)
        assert stats["unknown_length"] == 1

        sim.faults.inject("duplicate")
        ticks = decode_frame(await next_data_frame(ws))
        assert len(ticks) % 2 == 0 and ticks[0::2] == ticks[1::2]

        sim.faults.inject("negative")
        ticks = decode_frame(await next_data_frame(ws))
        assert any(t.last_price < 0 for t in ticks)

        sim.faults.inject("restart", 1.0)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                await asyncio.wait_for(ws.recv(), 3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(sim, token)
        assert refused.value.response.status_code == 503
        await asyncio.sleep(1.1)
        async with await open_ws(sim, token):
            pass
