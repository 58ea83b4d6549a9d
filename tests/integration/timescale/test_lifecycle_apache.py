"""TimescaleDB's lifecycle on the Apache build (Debian's): everything works, the TSL-only parts are off
and say why, retention runs by hand per table and timeframe, and no built-in job keeps failing."""

from __future__ import annotations

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale import lifecycle
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.core.aggregation import aggregate_candles
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db


@pytest.fixture
async def apache(admin_pool: asyncpg.Pool) -> asyncpg.Pool:
    if await admin_pool.fetchval("SELECT current_setting('timescaledb.license', true)") == "timescale":
        pytest.skip("the test database runs the TSL build; tests/tsl covers it")
    return admin_pool


async def test_db_status_says_which_lifecycle_features_are_off_and_why(apache: asyncpg.Pool) -> None:
    async with apache.acquire() as conn:
        status = await lifecycle.lifecycle_status(conn)
    assert status.license == "apache"
    assert [f.name for f in status.features] == [
        "compression",
        "retention policies",
        "continuous aggregates",
        "background jobs",
    ]
    assert not any(f.active for f in status.features)
    assert all("timescaledb.license = 'timescale'" in f.detail for f in status.features)
    assert "tickwise db retention --policy" in status.features[1].detail


async def test_migrating_parks_the_job_history_job_the_apache_build_cannot_run(apache: asyncpg.Pool) -> None:
    scheduled = await apache.fetchval(
        "SELECT scheduled FROM timescaledb_information.jobs WHERE proc_name = $1", lifecycle.JOB_HISTORY_PROC
    )
    assert scheduled is False
    async with apache.acquire() as conn:
        report = await lifecycle.ensure_lifecycle(conn)
        runs = await lifecycle.run_due_jobs(conn)
        status = await lifecycle.lifecycle_status(conn)
    job = next(j for j in status.jobs if j.name.startswith("Job History Log Retention"))
    assert (job.scheduled, job.runner, job.failing) == (False, "timescaledb", False)
    assert report.license == "apache"
    assert report.actions == []  # already parked by the migration; nothing else applies here
    assert runs == []  # run_job needs the TSL build


async def test_retention_by_hand_keeps_each_timeframe_for_its_own_age(clean_db: asyncpg.Pool) -> None:
    start = (
        pd.Timestamp.now(tz="Asia/Kolkata").normalize() - pd.Timedelta(days=800) + pd.Timedelta(hours=9.25)
    )
    times = start + pd.to_timedelta(range(120), unit="min")
    minute = pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "1m",
            "time": times,
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 10,
            "source": "historical",
        }
    )
    hourly = aggregate_candles(minute, Timeframe.M60)
    recent = minute.assign(time=minute["time"] + pd.Timedelta(days=790))
    repo = TimescaleCandleRepository(clean_db)
    for frame in (minute, hourly, recent):
        await repo.add_frame(frame)
    async with clean_db.acquire() as conn:
        trimmed = await lifecycle.apply_retention(conn)
    assert trimmed["candles/1m"] == len(minute)  # 800 days > 1 year: gone
    assert await repo.count(257, Timeframe.M1) == len(recent)  # 10 days old: kept
    assert await repo.count(257, Timeframe.M60) == len(hourly)  # 60m bars live 10 years
