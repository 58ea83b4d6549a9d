"""`bench historical`'s seeding: the direct seed stores exactly the REST backfill's candles, and a REST
backfill survives the simulator's daily token expiry by logging in again."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.bench.historical import DailyLogin, backfill_stage, bench_settings
from tickwise.bootstrap.broker import open_simulated_broker
from tickwise.bootstrap.historical import HistoricalSummary, open_historical
from tickwise.config import Settings
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

pytestmark = [pytest.mark.db]

SIM_START = datetime(2026, 3, 4, 16, 0, tzinfo=IST)
INFY = 408065


async def _stored(pool: asyncpg.Pool) -> pd.DataFrame:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT instrument_token, timeframe, time, open, high, low, close, volume, oi, source "
            "FROM candles ORDER BY instrument_token, time"
        )
        await conn.execute("TRUNCATE candles, backfill_log")
    return pd.DataFrame([dict(r) for r in rows])


async def test_direct_seed_stores_the_candles_the_rest_backfill_stores(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = bench_settings(tmp_path, instruments=3, sessions=2, scheduler="inline", workers=1)
    stored = {}
    async with open_historical(settings, url=db_url) as ctx:
        for seed in ("rest", "direct"):
            summary = HistoricalSummary()
            universe, _ = await backfill_stage(settings, ctx, seed, summary)
            assert len(universe) == 3 and summary.backfill is not None
            assert summary.backfill.rows_written == 3 * 2 * 375
            stored[seed] = await _stored(clean_db)
    # Same rows, bit for bit: prices, volumes, stamps, the empty oi and the source.
    pd.testing.assert_frame_equal(stored["rest"], stored["direct"], check_exact=True)


async def test_a_rest_backfill_logs_in_again_once_when_the_token_expires_mid_run() -> None:
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=SIM_START, speed=0) as b:
        assert b.relogin is not None and b.simulator is not None
        b.simulator.clock.set(b.simulator.clock.next_expiry() + timedelta(hours=3))  # the next morning
        start, end = SIM_START.replace(hour=9, minute=15), SIM_START.replace(hour=15, minute=29)
        with pytest.raises(KiteTokenError):  # the client itself still refuses a dead session
            await b.rest.historical_frame(INFY, Timeframe.M1, start, end)
        source = DailyLogin(b.rest, b.relogin)
        # Three concurrent fetches see the expiry; one login serves them all.
        frames = await asyncio.gather(
            *(source.historical_frame(INFY, Timeframe.M1, start, end) for _ in range(3))
        )
        assert source.relogins == 1
        assert all(len(f) == 375 for f in frames)
