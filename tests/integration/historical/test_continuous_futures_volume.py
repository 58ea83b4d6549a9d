"""The volume roll rule on the simulator's expiry week: the series leaves NOV once DEC out-traded it on
the previous session (the simulator moves the volume two sessions before expiry), before the date rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime

import pandas as pd
import pytest_asyncio

from tickwise.bootstrap.broker import Broker, open_simulated_broker
from tickwise.config import Settings
from tickwise.core.futures import RollRule, futures_of
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.pipelines.contracts import front_on
from tickwise.pipelines.historical.futures import build_continuous

SIM_START = datetime(2026, 11, 23, 16, 0, tzinfo=IST)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def broker() -> AsyncIterator[Broker]:
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=SIM_START, speed=0) as b:
        yield b


async def test_the_volume_rule_rolls_when_the_next_contract_out_trades_the_front_never_after_the_date(
    broker: Broker,
) -> None:
    nov, dec = futures_of(await broker.rest.instruments("NFO"), "NIFTY")[:2]

    async def fetch(token: int, day: date) -> pd.DataFrame:
        return await broker.rest.historical_frame(token, "minute", day, day)

    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 23))
    volume = {d: [(await fetch(c.instrument_token, d))["volume"].sum() for c in (nov, dec)] for d in days}
    # the first session DEC traded more than NOV; the series takes DEC from the session after it
    first_more = next(d for d in days if volume[d][1] > volume[d][0])
    switch = NSE.next_trading_day(first_more)
    # roll_sessions 0: by date NOV is held through its expiry day (no roll in the week); by volume the
    # series leaves it as soon as DEC out-traded it
    assert switch <= date(2026, 11, 23)
    _, by_volume = await build_continuous("NIFTY", [nov, dec], days, fetch, RollRule.of(0, "volume"))
    _, by_date = await build_continuous("NIFTY", [nov, dec], days, fetch, RollRule.of(0, "date"))
    (roll,) = by_volume.rolls
    assert roll.last_old_day == NSE.previous_trading_day(switch) and roll.new_token == dec.instrument_token
    assert by_date.rolls == []
    # the live mode asks the same function at session start
    for day in days:
        expected = dec if day >= switch else nov
        assert await front_on([nov, dec], day, fetch, RollRule.of(0, "volume")) == expected
