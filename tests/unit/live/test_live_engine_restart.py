"""The live engine resumed mid-session on stored history (as after a restart) completes its roll-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine

TOKEN = 408065
OPEN = datetime(2025, 1, 8, 9, 15, tzinfo=IST)
M = timedelta(minutes=1)


def stored_history(n: int) -> pd.DataFrame:
    """``n`` 1m candles from 09:15 shaped as the candle repository returns them (nullable ``oi``)."""
    times = pd.DatetimeIndex([OPEN + i * M for i in range(n)]).tz_convert("UTC")
    close = 100.0 + np.arange(n, dtype=np.float64) * 0.1
    return pd.DataFrame(
        {
            "instrument_token": np.full(n, TOKEN, dtype=np.int64),
            "timeframe": "1m",
            "time": times,
            "open": close - 0.05,
            "high": close + 0.2,
            "low": close - 0.2,
            "close": close,
            "volume": np.full(n, 1000, dtype=np.int64),
            "oi": pd.array([pd.NA] * n, dtype="Int64"),
            "source": "live",
            "obi_5": np.full(n, np.nan),
        }
    )


def bar(t: datetime, close: float) -> Bar:
    return Bar(Candle(TOKEN, Timeframe.M1, t, close, close + 0.1, close - 0.1, close, 500, None, "live"))


def test_a_roll_up_completed_after_a_restart_includes_the_stored_bars_of_its_bucket() -> None:
    out: dict[str, list[Any]] = {}
    engine = LiveEngine(
        FeatureCalculator(),
        lambda token, t, row: None,  # no model needed: the signal step is not under test
        lambda table, rows: out.setdefault(table, []).extend(rows),
    )
    engine.open_instrument(TOKEN, stored_history(18))  # 09:15 .. 09:32 stored before the restart
    engine.process(bar(OPEN + 18 * M, 102.0))
    engine.process(bar(OPEN + 19 * M, 102.5))  # 09:34 completes the 09:30 five-minute bucket
    assert engine.errors == 0 and engine.bars == 2
    rollups = [b.candle for b in out["candles"] if b.candle.timeframe is Timeframe.M5]
    assert len(rollups) == 1
    five = rollups[0]
    assert five.time == OPEN + 15 * M
    assert five.volume == 3 * 1000 + 2 * 500  # 09:30-09:32 from the stored history, 09:33-09:34 live
    assert five.close == 102.5 and five.oi is None and five.source == "live"
    assert len(out["features"]) == 2


def test_a_rewound_bar_replaces_its_roll_up_with_the_corrected_one() -> None:
    out: dict[str, list[Any]] = {}
    engine = LiveEngine(
        FeatureCalculator(),
        lambda token, t, row: None,
        lambda table, rows: out.setdefault(table, []).extend(rows),
    )
    engine.open_instrument(TOKEN, stored_history(15))  # 09:15 .. 09:29
    for i in range(15, 20):
        engine.process(bar(OPEN + i * M, 101.0))  # 09:30 .. 09:34: the 09:30 bucket completes
    engine.rewind(TOKEN, [bar(OPEN + i * M, 103.0) for i in range(18, 20)])  # 09:33, 09:34 corrected
    fives = [b.candle for b in out["candles"] if b.candle.timeframe is Timeframe.M5]
    assert [f.time for f in fives] == [OPEN + 15 * M, OPEN + 15 * M]
    assert fives[-1].close == 103.0 and fives[-1].high == 103.1 and fives[-1].volume == 5 * 500
    assert engine.rewinds == 1 and engine.bars == 7 and engine.errors == 0


def test_a_bucket_left_open_on_an_earlier_day_is_not_rewritten_by_the_next_days_first_bar() -> None:
    out: dict[str, list[Any]] = {}
    engine = LiveEngine(
        FeatureCalculator(),
        lambda token, t, row: None,
        lambda table, rows: out.setdefault(table, []).extend(rows),
    )
    engine.open_instrument(TOKEN, stored_history(18))  # the day ends at 09:32: its 09:30 bucket stays open
    next_day = OPEN + timedelta(days=1)
    engine.process(bar(next_day, 101.0))
    assert [b for b in out["candles"] if b.candle.timeframe is not Timeframe.M1] == []
    assert [b.time for b in out["candles"]] == [next_day]
