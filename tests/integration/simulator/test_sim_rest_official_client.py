"""The official ``kiteconnect`` REST client works against the simulator: login with the checksum flow,
instruments, historical candles, and Kite's errors (429 NetworkException, span-limit InputException).

``import kiteconnect`` installs the Twisted reactor process-wide, so the client runs in a subprocess;
the simulator runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tickwise.adapters.kite.simulator import SimulatorConfig, run_simulator
from tickwise.domain.time import IST

pytestmark = pytest.mark.oracle

CLIENT = r"""
import json, sys
from datetime import datetime
from kiteconnect import KiteConnect
from kiteconnect import exceptions as ex

root, api_key, api_secret, request_token = sys.argv[1:5]
out = {}
kite = KiteConnect(api_key, root=root)
session = kite.generate_session(request_token, api_secret=api_secret)
out["session_keys"] = sorted(session)
kite.set_access_token(session["access_token"])
out["profile_user"] = kite.profile()["user_id"]
instruments = kite.instruments()
out["instruments"] = [[i["instrument_token"], i["tradingsymbol"], i["segment"], i["exchange"], i["tick_size"],
                       str(i["expiry"])] for i in instruments]
candles = kite.historical_data(408065, "2026-11-19 09:15:00", "2026-11-19 15:30:00", "minute")
out["candles"] = [[c["date"].isoformat(), c["open"], c["high"], c["low"], c["close"], c["volume"]] for c in candles]
day = kite.historical_data(408065, "2026-11-01 00:00:00", "2026-11-19 23:59:59", "day", oi=True)
out["day"] = [[c["date"].isoformat(), c["oi"]] for c in day]
try:
    kite.historical_data(408065, "2026-08-01 09:15:00", "2026-11-19 15:30:00", "minute")
    out["span"] = None
except ex.InputException as exc:
    out["span"] = [type(exc).__name__, exc.code, str(exc)]
statuses = []
for _ in range(6):
    try:
        kite.quote(["NSE:INFY"])
        statuses.append("ok")
    except ex.NetworkException as exc:
        statuses.append(exc.code)
out["quote_statuses"] = statuses
kite.set_access_token("bogus")
try:
    kite.profile()
except ex.TokenException as exc:
    out["bad_token"] = [exc.code, str(exc)]
print(json.dumps(out))
"""


async def test_official_client_logs_in_and_fetches_instruments_and_candles() -> None:
    config = SimulatorConfig(rest_port=0, ws_port=0, start=datetime(2026, 11, 20, 10, 0, tzinfo=IST), speed=0)
    async with run_simulator(config) as sim:
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            r = await http.get(
                "/connect/login", params={"v": 3, "api_key": sim.api_key}, follow_redirects=False
            )
        assert r.status_code == 302
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["status"] == ["success"] and query["action"] == ["login"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            sim.rest_url,
            sim.api_key,
            config.api_secret,
            query["request_token"][0],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        out = json.loads(stdout)
        expected = sim.market.candles(
            408065,
            1,
            datetime(2026, 11, 19, 9, 15, tzinfo=IST),
            datetime(2026, 11, 19, 15, 30, tzinfo=IST),
            sim.clock.now(),
        )

    assert {"access_token", "public_token", "login_time", "user_id", "api_key"} <= set(out["session_keys"])
    assert out["profile_user"] == "SIM001"
    tokens = {row[0]: row for row in out["instruments"]}
    assert tokens[408065][1:4] == ["INFY", "NSE", "NSE"]
    assert tokens[256265][1:4] == ["NIFTY 50", "INDICES", "NSE"]
    cds = [row for row in out["instruments"] if row[3] == "CDS"]
    assert cds and cds[0][0] & 0xFF == 3 and cds[0][5] != "None"
    assert len(out["candles"]) == 375
    assert out["candles"][0][0] == "2026-11-19T09:15:00+05:30"
    assert [[datetime.fromisoformat(c[0]), *c[1:]] for c in out["candles"]] == [list(e) for e in expected]
    assert out["day"] and all(row[0].endswith("T00:00:00+05:30") and row[1] == 0 for row in out["day"])
    assert out["span"] == ["InputException", 400, "interval exceeds max limit: 60 days"]
    assert out["quote_statuses"][0] == "ok" and 429 in out["quote_statuses"]
    assert out["bad_token"] == [403, "Incorrect `api_key` or `access_token`."]
