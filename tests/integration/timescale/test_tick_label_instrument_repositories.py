from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale import (
    TimescaleBackfillLogRepository,
    TimescaleInstrumentRepository,
    TimescaleLabelRepository,
    TimescaleTickRepository,
)
from tickwise.domain.errors import DataValidationError
from tickwise.domain.instrument import Instrument
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db

T = pd.Timestamp("2024-03-01 09:15", tz=IST).to_pydatetime()


async def test_ticks_with_depth_round_trip_and_duplicates_are_skipped(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleTickRepository(clean_db)
    depth = Depth(
        buy=tuple(DepthLevel(100 + i, 99.5 - i * 0.05, 1 + i) for i in range(5)),
        sell=tuple(DepthLevel(200 + i, 99.6 + i * 0.05, 2 + i) for i in range(5)),
    )
    full = Tick(
        257,
        "full",
        True,
        99.55,
        10,
        99.5,
        1000,
        5000,
        6000,
        exchange_timestamp=T,
        depth=depth,
        received_at=T + timedelta(milliseconds=30),
    )
    ltp = Tick(256265, "ltp", False, 22000.5, received_at=T + timedelta(seconds=1))
    assert await repo.add_many([full, ltp]) == 2
    assert await repo.add_many([full]) == 0
    got = await repo.read_frame(257)
    row = got.iloc[0]
    assert row["bid_price_1"] == 99.5 and row["ask_qty_5"] == 204 and row["bid_orders_3"] == 3
    assert row["time"] == pd.Timestamp(T)
    ltp_row = (await repo.read_frame(256265)).iloc[0]
    assert ltp_row["time"] == pd.Timestamp(T + timedelta(seconds=1))  # no exchange time: receive time
    assert ltp_row["bid_price_1"] is None or np.isnan(ltp_row["bid_price_1"])


def _labels(n: int = 10) -> pd.DataFrame:
    times = pd.Timestamp(T) + pd.to_timedelta(np.arange(n), unit="min")
    return pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "1m",
            "time": times,
            "side": 1,
            "label": 1,
            "t1": times + pd.Timedelta(minutes=3),
            "t1_max": times + pd.Timedelta(minutes=10),
            "ret": 0.02,
            "exit_price": 102.0,
            "barrier": "pt",
            "ambiguous": False,
            "weight": 1.0,
            "meta": pd.array([1, None] * (n // 2), dtype="Int64"),
        }
    )


async def test_labels_round_trip_and_bad_barriers_are_rejected(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleLabelRepository(clean_db)
    assert await repo.add_frame(_labels()) == 10
    got = await repo.read_frame(257, Timeframe.M1)
    assert len(got) == 10 and got["meta"].tolist()[:2] == [1, pd.NA]
    assert got["t1"].iloc[0] == pd.Timestamp(T) + pd.Timedelta(minutes=3)
    bad = _labels().assign(barrier="maybe")
    with pytest.raises(DataValidationError, match="barrier"):
        await repo.add_frame(bad)
    assert await repo.count() == 10


async def test_instruments_upsert_and_deactivate(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleInstrumentRepository(clean_db)
    a = Instrument(738561, 2885, "RELIANCE", "RELIANCE INDUSTRIES", "NSE", "NSE", "EQ", 0.05, 1)
    b = Instrument(256265, 1001, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", 0.0, 0)
    assert await repo.upsert_many([a, b]) == 2
    assert [i.tradingsymbol for i in await repo.by_symbols("NSE", ["RELIANCE"])] == ["RELIANCE"]
    assert await repo.deactivate_missing([738561]) == 1
    assert [i.instrument_token for i in await repo.all()] == [738561]
    assert len(await repo.all(active_only=False)) == 2


async def test_backfill_log_remembers_fetched_days(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleBackfillLogRepository(clean_db)
    await repo.record(257, Timeframe.M1, date(2024, 3, 1), 375)
    await repo.record(257, Timeframe.M1, date(2024, 3, 4), 375)
    assert await repo.done_days(257, Timeframe.M1, date(2024, 3, 1), date(2024, 3, 2)) == {date(2024, 3, 1)}
