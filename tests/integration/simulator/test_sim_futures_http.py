"""The simulator's historical endpoint with ``continuous=1`` for index futures, over plain HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from tickwise.adapters.kite.simulator import SimulatorConfig, run_simulator
from tickwise.adapters.kite.simulator.server import RunningSimulator
from tickwise.domain.time import IST

START = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


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


async def test_historical_continuous_serves_futures_and_refuses_what_kite_refuses(
    sim: RunningSimulator,
) -> None:
    # On 2026-11-20 NIFTY26NOVFUT (expiry 2026-11-23) is live; NIFTY26OCTFUT expired on 2026-10-27.
    live, expired = (35_000 + 26 * 12 + 10) << 8 | 2, (35_000 + 26 * 12 + 9) << 8 | 2
    day = {"from": "2026-10-01", "to": "2026-11-19", "continuous": "1", "oi": "0"}
    async with httpx.AsyncClient(base_url=sim.rest_url, headers=auth(sim, sim.issue_access_token())) as http:
        minute = await http.get(
            f"/instruments/historical/{live}/minute",
            params={"from": "2026-10-26", "to": "2026-10-28", "continuous": "1"},
        )
        expired_day = await http.get(f"/instruments/historical/{expired}/day", params=day)
        expired_minute = await http.get(f"/instruments/historical/{expired}/minute", params=day)
        expired_plain = await http.get(
            f"/instruments/historical/{expired}/day", params={**day, "continuous": "0"}
        )
        equity = await http.get("/instruments/historical/408065/day", params=day)
    assert minute.status_code == 200 and len(minute.json()["data"]["candles"]) == 3 * 375
    assert expired_day.status_code == 200
    assert [c[0][:10] for c in expired_day.json()["data"]["candles"]][-1] == "2026-11-19"
    for refused in (expired_minute, expired_plain, equity):
        assert (refused.status_code, refused.json()["error_type"]) == (400, "InputException")
