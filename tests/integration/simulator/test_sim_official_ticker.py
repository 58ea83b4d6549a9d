"""Oracle: the official Twisted ``KiteTicker`` streams from the simulator and sees what our market emitted.

Runs the official client in a subprocess (it installs the Twisted reactor and never restarts it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

import pytest

from tickwise.adapters.kite.simulator import SPIKE_THRESHOLD, SimulatorConfig, run_simulator
from tickwise.domain.time import IST

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

TICKER = r"""
import json, os, queue, sys, time
from kiteconnect import KiteTicker

api_key, access_token, root = sys.argv[1:4]
received = queue.Queue()
kt = KiteTicker(api_key, access_token, root=root)

def on_connect(ws, response):
    ws.subscribe([408065, 256265])
    ws.set_mode(ws.MODE_FULL, [408065, 256265])

def on_ticks(ws, ticks):
    received.put(ticks)

kt.on_connect = on_connect
kt.on_ticks = on_ticks
kt.connect(threaded=True)
deadline = time.time() + 4
out = []
while time.time() < deadline:
    try:
        for t in received.get(timeout=0.2):
            for key in ("last_trade_time", "exchange_timestamp"):
                if t.get(key) is not None:
                    t[key] = t[key].timestamp()
            out.append(t)
    except queue.Empty:
        pass
kt.close()
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"""


async def test_official_ticker_decodes_the_simulated_stream() -> None:
    config = SimulatorConfig(
        rest_port=0, ws_port=0, start=datetime(2026, 11, 20, 11, 0, tzinfo=IST), speed=5.0
    )
    async with run_simulator(config) as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            TICKER,
            sim.api_key,
            sim.issue_access_token(),
            sim.ws_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        ticks = json.loads(stdout)
        full = [t for t in ticks if t["instrument_token"] == 408065 and t["mode"] == "full"]
        assert len(full) >= 3
        for t in full:
            at = datetime.fromtimestamp(t["exchange_timestamp"], IST)
            mine = sim.market.last_snapshot(408065, at)
            assert mine.exchange_timestamp == at
            if abs(t["last_price"] / mine.last_price - 1) > SPIKE_THRESHOLD:
                continue  # a bad tick the stream adds after the genuine snapshot of that second
            assert t["last_price"] == mine.last_price and t["volume_traded"] == mine.volume_traded
            assert mine.depth is not None
            assert [lv["price"] for lv in t["depth"]["buy"]] == [lv.price for lv in mine.depth.buy]
            assert [lv["quantity"] for lv in t["depth"]["sell"]] == [lv.quantity for lv in mine.depth.sell]
        index = [t for t in ticks if t["instrument_token"] == 256265 and t["mode"] == "full"]
        assert index and all(not t["tradable"] for t in index)
