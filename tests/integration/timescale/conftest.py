"""Frame builders for the TimescaleDB tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2024-01-01 09:15", tz="Asia/Kolkata")


def candle_frame(n: int, *, tokens: int = 10, timeframe: str = "1m", seed: int = 1) -> pd.DataFrame:
    """``n`` valid candles spread over ``tokens`` instruments, one per minute per instrument."""
    per = n // tokens
    rng = np.random.default_rng(seed)
    close = 100 + np.abs(rng.standard_normal(per * tokens)).cumsum() * 0.001
    return pd.DataFrame(
        {
            "instrument_token": np.repeat(np.arange(1, tokens + 1) * 256 + 1, per),
            "timeframe": timeframe,
            "time": T0 + pd.to_timedelta(np.tile(np.arange(per), tokens), unit="min"),
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close + 0.25,
            "volume": rng.integers(0, 1000, per * tokens),
            "oi": pd.array([None] * (per * tokens), dtype="Int64"),
            "source": "historical",
        }
    )


@pytest.fixture
def make_candles() -> Callable[..., pd.DataFrame]:
    return candle_frame
