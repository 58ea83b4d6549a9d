"""Barrier inputs of signal bars: the close and the ATR at each signal bar, as the labels compute them.

ATR is TA-Lib ``ATR(high, low, close, period)`` over the instrument's whole candle history in the signal
timeframe (labeling.md §1: anchored at the first stored candle), so a trade's levels are exactly the
levels its label was computed with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib


def signal_bar_levels(candles: pd.DataFrame, times: pd.Series, atr_period: int) -> pd.DataFrame:
    """Per signal time: ``close`` and ``atr`` of the candle opening at that time (NaN when missing).

    ``candles``: one instrument's full history in the signal timeframe (``time``, ``high``, ``low``,
    ``close``), in time order. ``times``: tz-aware signal bar open instants.
    """
    out = pd.DataFrame({"close": np.nan, "atr": np.nan}, index=range(len(times)))
    if candles.empty or len(times) == 0:
        return out
    high, low, close = (candles[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    atr = talib.ATR(high, low, close, timeperiod=atr_period)
    bar_times = pd.DatetimeIndex(pd.to_datetime(candles["time"], utc=True))
    pos = bar_times.get_indexer(pd.DatetimeIndex(pd.to_datetime(times, utc=True)))
    found = pos >= 0
    out.loc[found, "close"] = close[pos[found]]
    out.loc[found, "atr"] = atr[pos[found]]
    return out
