"""KiteTicker against the simulator: a fast simulated session with scripted faults of every kind."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.adapters.kite.simulator import RunningSimulator
from tickwise.adapters.kite.ticker import KiteTicker, TickerState
from tickwise.bootstrap.broker import Broker, open_simulated_broker
from tickwise.config import Settings
from tickwise.domain.backoff import Backoff
from tickwise.domain.time import IST

sys.path.insert(0, str(Path(__file__).parent))
from fake_kite_ws import eventually

SIM_START = datetime(2026, 3, 2, 9, 14, 50, tzinfo=IST)
FAST = Backoff(base=0.05, factor=2.0, cap=0.5, jitter=0.2)


def _server_registry(broker: Broker) -> dict[int, str]:
    sim = broker.simulator
    assert isinstance(sim, RunningSimulator)  # in-process: its state is reachable
    merged: dict[int, str] = {}
    for client in sim.ticker.clients:
        if client.ws.state.name == "OPEN":
            merged.update(client.modes)
    return merged


async def _subscribe_universe(broker: Broker, ticker: KiteTicker) -> dict[int, str]:
    instruments = await broker.rest.instruments()
    wanted: dict[int, str] = {}
    for ins in instruments:
        if not ins.tradable:
            wanted[ins.instrument_token] = "quote"
        elif ins.exchange == "CDS":
            wanted[ins.instrument_token] = "ltp"
        else:
            wanted[ins.instrument_token] = "full"
    for mode in ("full", "quote", "ltp"):
        await ticker.subscribe([t for t, m in wanted.items() if m == mode], mode=mode)
    return wanted


async def _drain(ticker: KiteTicker) -> int:
    n = 0
    while not ticker.queue.empty():
        ticker.queue.get_nowait()
        n += 1
    return n


@pytest.mark.slow
async def test_ticker_survives_a_session_of_scripted_faults_and_ends_fully_subscribed() -> None:
    async with open_simulated_broker(
        Settings(), rest_port=0, ws_port=0, start=SIM_START, speed=120.0, heartbeat_interval=0.2
    ) as broker:
        sim = broker.simulator
        assert isinstance(sim, RunningSimulator)
        gaps = []
        async with broker.ticker(backoff=FAST, watchdog_s=1.0, on_gap=gaps.append) as ticker:
            wanted = await _subscribe_universe(broker, ticker)
            await ticker.wait_connected(10)
            await eventually(lambda: _server_registry(broker) == wanted, 5, "initial subscriptions")
            await eventually(lambda: ticker.stats.ticks > 0, 5, "first ticks")

            async def fault(action: str, *args: float) -> None:
                before = ticker.stats.reconnects
                sim.faults.inject(action, *args)
                await eventually(lambda: ticker.stats.reconnects > before, 10, f"reconnect after {action}")
                await ticker.wait_connected(10)
                await eventually(lambda: _server_registry(broker) == wanted, 5, f"replay after {action}")

            await fault("abort")
            await fault("close", 1011)
            await fault("close", 1000)
            await fault("stall", 3.0)  # watchdog at 1 s
            await eventually(lambda: ticker.stats.watchdog_timeouts >= 1, 5, "watchdog")
            # Rejected handshakes of two kinds, then a drop that makes the client meet them.
            sim.faults.inject("reject", 2, 500)
            await fault("abort")
            await eventually(lambda: ticker.stats.failed_connects >= 2, 10, "rejected handshakes")
            # A single 403 (token revoked): the broker's token reloader renews it and the ticker retries once.
            old_token = ticker.access_token
            sim.faults.inject("reject", 1, 403)
            await fault("close", 1001)
            await eventually(lambda: ticker.access_token != old_token, 10, "token renewed after a 403")
            await ticker.wait_connected(10)
            await fault("restart", 0.5)
            # Frame-level faults: the connection stays up, anomalies are counted.
            before = ticker.stats.decode_errors
            for action in ("malformed", "unknown_length", "duplicate", "reorder", "negative"):
                sim.faults.inject(action)
            await eventually(lambda: ticker.stats.decode_errors > before, 10, "counted malformed frames")

            frames = ticker.stats.frames
            await eventually(lambda: ticker.stats.frames > frames + 3, 10, "data after the faults")
            await eventually(lambda: _server_registry(broker) == wanted, 5, "final subscriptions")
            assert ticker.subscriptions == wanted
            assert ticker.state is TickerState.CONNECTED and ticker.error is None
            assert ticker.stats.reconnects >= 7
            await eventually(lambda: len(gaps) >= 7, 5, "gap callbacks")
            assert len(ticker.gaps) == ticker.stats.disconnects >= 7
            for gap in ticker.gaps:
                assert gap.reconnected_at is not None
                assert gap.disconnected_at <= gap.reconnected_at
                assert gap.disconnected_at.utcoffset() is not None
                assert gap.disconnected_at >= SIM_START  # stamped on the simulated market clock
            assert await _drain(ticker) > 0
            assert ticker.stats.dropped == 0


async def test_ticker_with_a_bad_token_stops_with_a_clear_auth_error() -> None:
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=SIM_START) as broker:
        ticker = KiteTicker(broker.api_key, "revoked-token", root=broker.ws_url, backoff=FAST)
        with pytest.raises(KiteTokenError, match="403") as info:
            await asyncio.wait_for(ticker.run(), 10)
        assert "tickwise auth login" in str(info.value)
        assert ticker.state is TickerState.AUTH_FAILED
        assert ticker.stats.failed_connects == 1
        # A valid ticker on the same simulator is unaffected.
        async with broker.ticker(backoff=FAST) as good:
            await good.subscribe([256265])
            await good.wait_connected(5)
            await asyncio.wait_for(good.queue.get(), 5)
