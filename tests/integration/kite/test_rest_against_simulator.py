"""KiteRestClient against the in-process simulator: real login flow, instruments, chunked history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest
import pytest_asyncio

from tickwise.adapters.kite.errors import KiteInputError, KiteTokenError
from tickwise.adapters.kite.rest import KiteRestClient
from tickwise.bootstrap.broker import Broker, open_simulated_broker
from tickwise.config import Settings
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

SIM_START = datetime(2026, 3, 2, 9, 14, 50, tzinfo=IST)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def broker() -> AsyncIterator[Broker]:
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=SIM_START, speed=1.0) as b:
        yield b


async def test_login_flow_yields_a_working_session(broker: Broker) -> None:
    assert broker.simulated and broker.access_token
    profile = await broker.rest.profile()
    assert profile.get("user_id")


async def test_instrument_dump_holds_equities_the_index_and_a_currency_future(broker: Broker) -> None:
    instruments = await broker.rest.instruments()
    by_token = {i.instrument_token: i for i in instruments}
    assert 256265 in by_token and not by_token[256265].tradable
    assert any(i.exchange == "CDS" and i.expiry is not None for i in instruments)
    equities = [i for i in instruments if i.exchange == "NSE" and i.instrument_type == "EQ" and i.tradable]
    assert len(equities) >= 3
    nse = await broker.rest.instruments("NSE")
    assert {i.exchange for i in nse} == {"NSE"}


async def test_sixty_plus_days_of_minute_candles_arrive_once_each_without_rate_limit_errors(
    broker: Broker,
) -> None:
    instruments = await broker.rest.instruments("NSE")
    tokens = [i.instrument_token for i in instruments if i.instrument_type == "EQ" and i.tradable][:2]
    first_day, last_day = date(2025, 12, 20), date(2026, 2, 27)  # 70 calendar days -> 2 chunks
    expected_days = NSE.trading_days(first_day, last_day)
    rest = broker.rest
    retries_before = rest.retries
    for token in tokens:
        candles = await rest.historical(token, Timeframe.M1, first_day, last_day)
        times = [c.time for c in candles]
        assert times == sorted(set(times)), "each candle exactly once, in order"
        assert {t.date() for t in times} == set(expected_days)
        assert len(candles) == 375 * len(expected_days)
        assert all(t.utcoffset() == timedelta(hours=5, minutes=30) for t in times[:5])
        if token != tokens[0]:
            continue
        # Different chunk boundaries (an odd split mid-session) give the very same candles.
        split = datetime(2026, 1, 14, 11, 7, 30, tzinfo=IST)
        left = await rest.historical(
            token, Timeframe.M1, datetime.combine(first_day, datetime.min.time(), IST), split
        )
        right = await rest.historical(token, "minute", split + timedelta(seconds=1), last_day)
        assert left + right == candles
    assert rest.retries == retries_before, "the client's pacing must never trigger a 429"


async def test_span_errors_and_bad_tokens_are_not_retried(broker: Broker) -> None:
    rest = broker.rest
    with pytest.raises(KiteInputError):
        await rest._request(
            "GET",
            "/instruments/historical/256265/minute",
            params={"from": "2025-01-01 09:15:00", "to": "2025-06-01 09:15:00"},
        )
    async with KiteRestClient(broker.api_key, "not-a-token", root=rest.root) as stranger:
        with pytest.raises(KiteTokenError) as info:
            await stranger.profile()
    assert info.value.status == 403 and stranger.retries == 0
