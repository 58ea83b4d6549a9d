"""candle_flags (migration 0010): round trip, upsert on re-check, bad rows rejected, Grafana may read."""

from __future__ import annotations

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale.candle_flag_repository import TimescaleCandleFlagRepository
from tickwise.domain.errors import DataValidationError
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db

T = pd.date_range("2026-10-05 03:45", periods=4, freq="1min", tz="UTC")


def _flags(score: float = 25.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_token": 408065,
            "timeframe": "1m",
            "time": [T[1], T[1], T[3]],
            "check": ["wick_iqr", "range_iqr", "volume_spike"],
            "score": [score, 21.0, 9.5],
            "action": ["excluded", "excluded", "kept"],
        }
    )


async def test_flags_round_trip_and_a_recheck_overwrites_instead_of_duplicating(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleCandleFlagRepository(clean_db)
    assert await repo.add_frame(_flags()) == 3
    assert await repo.add_frame(_flags(score=30.0)) == 3
    got = await repo.read_frame(408065, Timeframe.M1)
    assert got["check"].tolist() == ["range_iqr", "wick_iqr", "volume_spike"]  # time, then check
    assert got.loc[got["check"] == "wick_iqr", "score"].item() == 30.0
    assert await repo.counts() == {
        ("range_iqr", "excluded"): 1,
        ("wick_iqr", "excluded"): 1,
        ("volume_spike", "kept"): 1,
    }
    assert await repo.counts(start=T[2].to_pydatetime()) == {("volume_spike", "kept"): 1}


async def test_a_flag_with_an_unknown_action_is_rejected_with_the_row(clean_db: asyncpg.Pool) -> None:
    bad = _flags().assign(action=["excluded", "dropped", "kept"])
    with pytest.raises(DataValidationError, match="action"):
        await TimescaleCandleFlagRepository(clean_db).add_frame(bad)


async def test_candle_flags_is_a_hypertable_the_grafana_role_can_read_but_not_write(
    clean_db: asyncpg.Pool, admin_pool: asyncpg.Pool
) -> None:
    await TimescaleCandleFlagRepository(clean_db).add_frame(_flags())
    assert (
        await admin_pool.fetchval(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'candle_flags'"
        )
        == 1
    )
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE tickwise_grafana")
            assert await conn.fetchval("SELECT count(*) FROM candle_flags") == 3
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute("DELETE FROM candle_flags")
        finally:
            await transaction.rollback()
