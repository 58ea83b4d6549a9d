from __future__ import annotations

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleFeatureRepository
from tickwise.domain.errors import DataValidationError
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db

T0 = pd.Timestamp("2024-03-01 09:15", tz="Asia/Kolkata")


def _features(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "1m",
            "time": T0 + pd.to_timedelta(np.arange(n), unit="min"),
            "rsi_14": np.r_[[np.nan] * 14, np.linspace(30, 70, n - 14)],
            "ema_20": np.linspace(100, 110, n),
        }
    )


async def test_new_feature_columns_are_added_and_readable_by_name_in_sql(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    frame = _features()
    assert await repo.add_frame(frame, "fs_v1") == 50
    async with clean_db.acquire() as conn:
        rsi = await conn.fetch(
            "SELECT rsi_14 FROM features WHERE instrument_token = 257 AND feature_set = 'fs_v1' ORDER BY time"
        )
    assert [r["rsi_14"] for r in rsi][:14] == [None] * 14
    assert [r["rsi_14"] for r in rsi][14] == pytest.approx(30.0)
    got = await repo.read_frame(257, Timeframe.M1, "fs_v1", None, None)
    assert list(got.columns) == ["instrument_token", "timeframe", "time", "rsi_14", "ema_20"]
    np.testing.assert_allclose(got["ema_20"].to_numpy(), frame["ema_20"].to_numpy())
    assert got["rsi_14"].isna().sum() == 14
    assert got["time"].tolist() == frame["time"].tolist()


async def test_a_feature_set_reads_only_its_own_columns_and_rewrites_update(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    await repo.add_frame(_features(), "fs_v1")
    other = _features()[["instrument_token", "timeframe", "time"]].assign(atr_14=1.5)
    await repo.add_frame(other, "fs_v2")
    got = await repo.read_frame(257, Timeframe.M1, "fs_v2")
    assert list(got.columns) == ["instrument_token", "timeframe", "time", "atr_14"]
    await repo.add_frame(other.assign(atr_14=2.5), "fs_v2")
    got = await repo.read_frame(257, Timeframe.M1, "fs_v2")
    assert len(got) == 50 and (got["atr_14"] == 2.5).all()
    assert await repo.count() == 100


@pytest.mark.parametrize("name", ["RSI_14", "drop table", "1abc", "time"])
async def test_invalid_feature_names_are_rejected(clean_db: asyncpg.Pool, name: str) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    frame = _features().rename(columns={"ema_20": name})
    with pytest.raises(DataValidationError):
        await repo.add_frame(frame, "fs_v1")
    assert await repo.count() == 0


async def test_infinite_feature_values_reject_the_batch(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    frame = _features()
    frame.loc[20, "ema_20"] = np.inf
    with pytest.raises(DataValidationError, match=r"row 20.*ema_20 is infinite"):
        await repo.add_frame(frame, "fs_v1")
    assert await repo.count() == 0


async def test_read_matrix_returns_the_frames_values_bit_for_bit_with_null_as_nan(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    frame = _features().assign(tiny=np.r_[-0.0, 5e-324, 1e308, np.arange(47) / 7.0])
    await repo.add_frame(frame, "fs_v1")
    start, end = T0.to_pydatetime(), (T0 + pd.Timedelta(minutes=40)).to_pydatetime()
    columns = ["tiny", "rsi_14", "ema_20"]
    got = await repo.read_matrix(257, Timeframe.M1, "fs_v1", start, end, columns=columns)
    expected = await repo.read_frame(257, Timeframe.M1, "fs_v1", start, end, columns=columns)
    assert got.columns == tuple(columns) and len(got) == len(expected) == 40
    assert got.values.dtype == np.float64 and got.values.flags.c_contiguous
    # bit for bit: NaN where NULL, and the sign of zero and the subnormal survive
    assert np.array_equal(got.values.view(np.int64), expected.loc[:, columns].to_numpy().view(np.int64))
    assert np.signbit(got.values[0, 0]) and got.values[1, 0] == 5e-324
    assert np.array_equal(got.times, pd.DatetimeIndex(expected["time"]).as_unit("ns").asi8)


async def test_read_matrix_of_no_rows_or_no_columns_is_empty_and_an_unknown_column_is_refused(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleFeatureRepository(clean_db)
    await repo.add_frame(_features(), "fs_v1")
    none = await repo.read_matrix(999, Timeframe.M1, "fs_v1", columns=["ema_20"])
    assert none.values.shape == (0, 1) and len(none.times) == 0
    keys = await repo.read_matrix(257, Timeframe.M1, "fs_v1", columns=[])
    assert keys.values.shape == (50, 0) and len(keys.times) == 50
    with pytest.raises(DataValidationError, match="unknown feature column"):
        await repo.read_matrix(257, Timeframe.M1, "fs_v1", columns=["not_there"])
    with pytest.raises(DataValidationError, match="invalid feature name"):
        await repo.read_matrix(257, Timeframe.M1, "fs_v1", columns=["drop table"])
