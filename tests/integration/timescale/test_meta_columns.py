"""Meta-labeling in the database: ``signals.meta_prob``/``meta_size`` round-trip (migration 0013), and
``labels.meta`` of a scored window is replaced as a whole (no stale meta-label survives a re-score)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleLabelRepository, TimescaleSignalRepository
from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

pytestmark = pytest.mark.db

T = pd.Timestamp("2024-03-01 09:15", tz=IST)


def _labels(n: int = 6) -> pd.DataFrame:
    times = T + pd.to_timedelta(np.repeat(np.arange(n), 2), unit="min")
    return pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "1m",
            "time": times,
            "side": np.tile([1, -1], n),
            "label": 1,
            "t1": times + pd.Timedelta(minutes=3),
            "t1_max": times + pd.Timedelta(minutes=10),
            "ret": 0.02,
            "exit_price": 102.0,
            "barrier": "pt",
            "ambiguous": False,
            "weight": 1.0,
        }
    )


def _meta(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """(minute, side, meta) -> the frame ``replace_meta`` takes."""
    return pd.DataFrame(
        {
            "instrument_token": 257,
            "time": [T + pd.Timedelta(minutes=m) for m, _, _ in rows],
            "side": [s for _, s, _ in rows],
            "meta": [v for _, _, v in rows],
        }
    )


async def _stored_meta(repo: TimescaleLabelRepository) -> list[tuple[int, int, object]]:
    got = await repo.read_frame(257, Timeframe.M1)
    minutes = ((pd.DatetimeIndex(got["time"]) - T) / pd.Timedelta(minutes=1)).astype(int)
    return [
        (int(m), int(s), None if pd.isna(v) else int(v))
        for m, s, v in zip(minutes, got["side"], got["meta"], strict=True)
        if not pd.isna(v)
    ]


async def test_meta_labels_of_a_window_are_set_and_a_rescore_replaces_them_all(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleLabelRepository(clean_db)
    await repo.add_frame(_labels())
    start, end = T.to_pydatetime(), (T + pd.Timedelta(minutes=4)).to_pydatetime()
    assert await repo.replace_meta(Timeframe.M1, [257], start, end, _meta([(0, 1, 1), (2, -1, 0)])) == 2
    assert await _stored_meta(repo) == [(0, 1, 1), (2, -1, 0)]
    # A re-score proposes other sides: the old meta-labels of the window go, the new ones come.
    assert await repo.replace_meta(Timeframe.M1, [257], start, end, _meta([(1, 1, 0)])) == 1
    assert await _stored_meta(repo) == [(1, 1, 0)]
    # Outside the window nothing changes; a proposal without a stored label is ignored.
    await repo.replace_meta(Timeframe.M1, [257], end, None, _meta([(5, -1, 1), (30, 1, 1)]))
    assert await _stored_meta(repo) == [(1, 1, 0), (5, -1, 1)]
    # Relabelling (a frame without meta) keeps the meta-labels.
    await repo.add_frame(_labels())
    assert await _stored_meta(repo) == [(1, 1, 0), (5, -1, 1)]


async def test_signal_meta_probability_and_size_round_trip_and_reach_the_backtest(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleSignalRepository(clean_db)
    base = Signal(
        257,
        Timeframe.M1,
        T.to_pydatetime(),
        (T + timedelta(minutes=1)).to_pydatetime(),
        "m1",
        1,
        0.6,
        "historical",
        "fs",
    )
    later = dataclasses.replace(
        base, time=base.time + timedelta(minutes=1), available_at=base.available_at + timedelta(minutes=1)
    )
    await repo.add_many([dataclasses.replace(base, meta_prob=0.71, meta_size=0.4), later])
    got = await repo.read_frame(None, None, model_version="m1")
    assert got["meta_prob"].iloc[0] == 0.71 and got["meta_size"].iloc[0] == 0.4
    assert np.isnan(got["meta_size"].iloc[1])  # no meta model: NULL, read as NaN
    bt = await TimescaleBacktestRepository(clean_db).signals(
        base.time, base.time + timedelta(hours=1), model_version="m1", oos=False
    )
    assert bt["meta_size"].iloc[0] == 0.4 and np.isnan(bt["meta_size"].iloc[1])
