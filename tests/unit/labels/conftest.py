from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tickwise.domain.calendar import NSE
from tickwise.domain.timeframe import Timeframe

CandleFactory = Callable[..., pd.DataFrame]


def random_walk_candles(times: list, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(times)
    close = 100.0 + np.cumsum(rng.normal(0.0, 0.1, n))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.05, n))
    return pd.DataFrame(
        {
            "time": pd.DatetimeIndex(times),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
        }
    )


@pytest.fixture
def walk_candles() -> Callable[..., pd.DataFrame]:
    """Random-walk candles at the given open instants."""
    return random_walk_candles


@pytest.fixture
def session_candles() -> CandleFactory:
    """Random-walk candles on consecutive NSE sessions from 2025-01-06 (a Monday)."""

    def make(days: int = 2, timeframe: Timeframe = Timeframe.M1, seed: int = 3) -> pd.DataFrame:
        sessions = NSE.trading_days(date(2025, 1, 6), date(2025, 3, 31))[:days]
        times = [t for d in sessions for t in NSE.bar_opens(d, timeframe)]
        return random_walk_candles(times, seed)

    return make
