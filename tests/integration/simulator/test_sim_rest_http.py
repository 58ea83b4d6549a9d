"""The simulator's REST routes over plain HTTP: envelopes, error types, expiry and scripted REST faults."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from tickwise.adapters.kite.simulator import SimulatorConfig, run_simulator
from tickwise.adapters.kite.simulator.server import RunningSimulator
from tickwise.adapters.kite.simulator.sessions import checksum
from tickwise.domain.time import IST

START = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange"
)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        rest_port=0,
        ws_port=0,
        start=START,
        speed=0,
        rate_limits={"historical": 100, "quote": 100, "other": 100},
    )
    async with run_simulator(config) as running:
        yield running


def auth(sim: RunningSimulator, token: str) -> dict[str, str]:
    return {"Authorization": f"token {sim.api_key}:{token}", "X-Kite-Version": "3"}


async def test_checksum_login_flow_and_logout(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        r = await http.get("/connect/login", params={"v": 3, "api_key": sim.api_key})
        request_token = httpx.URL(r.headers["location"]).params["request_token"]
        bad = await http.post(
            "/session/token", data={"api_key": sim.api_key, "request_token": request_token, "checksum": "00"}
        )
        assert bad.status_code == 403 and bad.json()["error_type"] == "TokenException"
        r = await http.get("/connect/login", params={"v": 3, "api_key": sim.api_key})
        request_token = httpx.URL(r.headers["location"]).params["request_token"]
        good = await http.post(
            "/session/token",
            data={
                "api_key": sim.api_key,
                "request_token": request_token,
                "checksum": checksum(sim.api_key, request_token, sim.config.api_secret),
            },
        )
        assert good.status_code == 200 and good.json()["status"] == "success"
        token = good.json()["data"]["access_token"]
        assert (await http.get("/user/profile", headers=auth(sim, token))).status_code == 200
        out = await http.delete("/session/token", params={"api_key": sim.api_key, "access_token": token})
        assert out.json() == {"status": "success", "data": True}
        after = await http.get("/user/profile", headers=auth(sim, token))
        assert (
            after.status_code == 403 and after.json()["message"] == "Incorrect `api_key` or `access_token`."
        )


async def test_access_token_expires_at_0600_ist_next_day(sim: RunningSimulator) -> None:
    token = sim.issue_access_token()
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, token)) as http:
        sim.clock.set(datetime(2026, 11, 21, 5, 59, tzinfo=IST))
        assert (await http.get("/user/profile")).status_code == 200
        sim.clock.set(datetime(2026, 11, 21, 6, 0, tzinfo=IST))
        r = await http.get("/user/profile")
    assert r.status_code == 403 and r.json()["error_type"] == "TokenException"


async def test_instrument_dump_has_kites_header_and_every_divisor(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, sim.issue_access_token())) as http:
        r = await http.get("/instruments")
        cds = await http.get("/instruments/CDS")
    assert "csv" in r.headers["content-type"]
    assert r.text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # NSE, NFO index futures, CDS, indices
    assert {int(row["instrument_token"]) & 0xFF for row in rows} == {1, 2, 3, 9}
    assert all(row[k] != "" for row in rows for k in ("last_price", "strike", "tick_size", "lot_size"))
    (fut,) = list(csv.DictReader(io.StringIO(cds.text)))
    assert fut["segment"] == "CDS-FUT" and fut["expiry"] >= "2026-11-20"


async def test_historical_validates_interval_range_and_span(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, sim.issue_access_token())) as http:
        base = "/instruments/historical/408065"
        ok = await http.get(f"{base}/5minute", params={"from": "2026-11-20", "to": "2026-11-20", "oi": "1"})
        bad_interval = await http.get(f"{base}/2minute", params={"from": "2026-11-20", "to": "2026-11-20"})
        reversed_range = await http.get(f"{base}/minute", params={"from": "2026-11-20", "to": "2026-11-19"})
        too_wide = await http.get(f"{base}/60minute", params={"from": "2025-01-01", "to": "2026-11-20"})
        unknown = await http.get("/nope")
    candles = ok.json()["data"]["candles"]
    assert [c[0] for c in candles] == [
        "2026-11-20T09:15:00+0530", "2026-11-20T09:20:00+0530", "2026-11-20T09:25:00+0530",
        "2026-11-20T09:30:00+0530", "2026-11-20T09:35:00+0530", "2026-11-20T09:40:00+0530",
        "2026-11-20T09:45:00+0530", "2026-11-20T09:50:00+0530", "2026-11-20T09:55:00+0530",
    ]  # fmt: skip  # only candles ended by the simulated 10:00
    assert all(len(c) == 7 and c[6] == 0 for c in candles)
    assert (bad_interval.status_code, bad_interval.json()["error_type"]) == (400, "InputException")
    assert (reversed_range.status_code, reversed_range.json()["error_type"]) == (400, "InputException")
    assert too_wide.json()["message"] == "interval exceeds max limit: 400 days"
    assert (unknown.status_code, unknown.json()["error_type"]) == (404, "GeneralException")


async def test_quote_endpoints_answer_with_the_last_snapshot(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, sim.issue_access_token())) as http:
        ltp = (await http.get("/quote/ltp", params={"i": ["NSE:INFY", "NSE:NIFTY 50", "NSE:NOPE"]})).json()
        full = (await http.get("/quote", params={"i": "NSE:INFY"})).json()
    assert set(ltp["data"]) == {"NSE:INFY", "NSE:NIFTY 50"}
    q = full["data"]["NSE:INFY"]
    assert q["last_price"] == ltp["data"]["NSE:INFY"]["last_price"]
    assert len(q["depth"]["buy"]) == 5 and q["timestamp"].startswith("2026-11-20 ")


async def test_scripted_rest_faults_answer_before_anything_else(sim: RunningSimulator) -> None:
    sim.faults.inject("rest", 429, 2)
    sim.faults.inject("rest", 500, 1)
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, sim.issue_access_token())) as http:
        statuses = [(await http.get("/user/profile")).status_code for _ in range(4)]
        r = await http.get("/user/profile")
    assert sorted(statuses) == [200, 429, 429, 500] and statuses[-1] == 200
    assert r.status_code == 200


async def test_rate_limits_are_per_class() -> None:
    config = SimulatorConfig(rest_port=0, ws_port=0, start=START, speed=0)
    async with run_simulator(config) as sim:
        sim.state.limiter.monotonic = lambda: 1000.0  # freeze the window: the test cannot be too slow
        headers = auth(sim, sim.issue_access_token())
        async with httpx.AsyncClient(base_url=sim.rest_url, headers=headers) as http:
            hist = [
                (
                    await http.get(
                        "/instruments/historical/408065/day",
                        params={"from": "2026-11-01", "to": "2026-11-19"},
                    )
                ).status_code
                for _ in range(4)
            ]
            profile = [(await http.get("/user/profile")).status_code for _ in range(3)]
    assert hist == [200, 200, 200, 429]
    assert profile == [200, 200, 200]
