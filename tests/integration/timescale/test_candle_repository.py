from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleCandleRepository
from tickwise.domain.candle import Candle
from tickwise.domain.errors import DataValidationError
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db

MakeCandles = Callable[..., pd.DataFrame]


async def test_writing_the_same_100k_candles_twice_leaves_100k_rows(
    clean_db: asyncpg.Pool, make_candles: MakeCandles
) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(100_000)
    assert await repo.add_frame(frame) == 100_000
    assert await repo.add_frame(frame) == 0
    assert await repo.count() == 100_000
    assert await repo.count(257, Timeframe.M1) == 10_000


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("close", float("nan"), "close is NaN"),
        ("high", 1.0, "high 1.0 < low"),
        ("timeframe", "7m", "unknown timeframe '7m'"),
        ("open", -5.0, "open is not positive"),
        ("open", float("inf"), "open is infinite"),
    ],
)
async def test_a_bad_row_rejects_the_whole_batch_and_nothing_is_committed(
    clean_db: asyncpg.Pool, make_candles: MakeCandles, column: str, value: object, message: str
) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(1_000)
    frame[column] = frame[column].astype(object)
    frame.loc[500, column] = value
    with pytest.raises(DataValidationError, match=message) as info:
        await repo.add_frame(frame)
    assert "row 500" in str(info.value)
    assert "nothing written" in str(info.value)
    assert await repo.count() == 0


async def test_naive_timestamps_are_rejected(clean_db: asyncpg.Pool, make_candles: MakeCandles) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(100)
    frame["time"] = frame["time"].dt.tz_localize(None)
    with pytest.raises(DataValidationError, match="naive timestamp"):
        await repo.add_frame(frame)
    assert await repo.count() == 0


async def test_range_reads_are_half_open_and_tz_aware(
    clean_db: asyncpg.Pool, make_candles: MakeCandles
) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(1_000)
    await repo.add_frame(frame)
    start = frame["time"].iloc[10].to_pydatetime()
    end = start + timedelta(minutes=20)
    got = await repo.read_frame(257, Timeframe.M1, start, end)
    assert len(got) == 20
    assert got["time"].dt.tz is not None
    assert got["time"].iloc[0] == pd.Timestamp(start)
    expected = frame[(frame.instrument_token == 257)].iloc[10:30]
    np.testing.assert_allclose(got["close"].to_numpy(), expected["close"].to_numpy())
    assert got["volume"].tolist() == expected["volume"].tolist()


async def test_latest_returns_the_last_n_candles_oldest_first(
    clean_db: asyncpg.Pool, make_candles: MakeCandles
) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(1_000)
    await repo.add_frame(frame)
    got = await repo.latest(257, Timeframe.M1, 5)
    expected_times = frame[frame.instrument_token == 257]["time"].iloc[-5:].tolist()
    assert got["time"].tolist() == expected_times
    assert await repo.last_time(257, Timeframe.M1) == expected_times[-1]


async def test_live_candles_update_a_stored_candle_on_conflict(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleCandleRepository(clean_db)
    t = pd.Timestamp("2024-01-02 09:15", tz="Asia/Kolkata").to_pydatetime()
    first = Candle(257, Timeframe.M1, t, 100.0, 101.0, 99.0, 100.5, 10, None, "live")
    revised = Candle(257, Timeframe.M1, t, 100.0, 102.0, 99.0, 101.5, 15, None, "live")
    assert await repo.add_many([first]) == 1
    assert await repo.add_many([revised]) == 1
    got = await repo.read_frame(257, Timeframe.M1)
    assert got[["high", "close", "volume"]].iloc[0].tolist() == [102.0, 101.5, 15]
    # The default for frames (backfill) keeps what is stored.
    await repo.add_frame(pd.DataFrame([{**_as_row(first), "close": 100.7}]))
    assert (await repo.read_frame(257, Timeframe.M1))["close"].iloc[0] == 101.5


async def test_obi_and_oi_round_trip_with_nulls(clean_db: asyncpg.Pool, make_candles: MakeCandles) -> None:
    repo = TimescaleCandleRepository(clean_db)
    frame = make_candles(20, tokens=1)
    frame["oi"] = pd.array([None, 5] * 10, dtype="Int64")
    frame["obi_5"] = [np.nan, 0.25] * 10
    await repo.add_frame(frame)
    got = await repo.read_frame(257, Timeframe.M1)
    assert got["oi"].tolist()[:2] == [pd.NA, 5]
    assert np.isnan(got["obi_5"].iloc[0]) and got["obi_5"].iloc[1] == 0.25
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM candles WHERE obi_5 IS NULL") == 10


def _as_row(c: Candle) -> dict[str, object]:
    return {
        "instrument_token": c.instrument_token,
        "timeframe": str(c.timeframe),
        "time": pd.Timestamp(c.time),
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "volume": c.volume,
        "source": c.source,
    }
