"""The candle frame that crosses the repository ports, built from domain objects in one place.

A candle frame has the columns of :data:`~tickwise.domain.candle.CANDLE_FRAME_COLUMNS` (plus ``obi_5``
when the candles carry an order-book imbalance), one row per candle, ``time`` a tz-aware column in IST
(the candle's open instant). Adapters, pipelines and tests all build it here, so every writer and every
comparison sees the same dtypes and the same time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.domain.candle import CANDLE_FRAME_COLUMNS, Candle
from tickwise.domain.time import IST


def _times(times: list[datetime]) -> pd.DatetimeIndex | list[datetime]:
    # Mixed offsets (UTC from the database, IST from the builder) become one IST column. A naive time is
    # passed through as it is, so the repository's validation rejects it by name instead of guessing.
    if any(t.tzinfo is None for t in times):
        return times
    return pd.to_datetime(times, utc=True).tz_convert(IST)


def candles_to_frame(
    candles: Sequence[Candle], *, obi_5: Sequence[float | None] | None = None
) -> pd.DataFrame:
    """Domain candles -> a candle frame (``time`` in IST); ``obi_5`` adds that column (None -> NaN)."""
    columns = list(CANDLE_FRAME_COLUMNS)
    if not candles:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).astype(
            {"time": pd.DatetimeTZDtype(tz=IST)}
        )
    else:
        frame = pd.DataFrame(
            {
                "instrument_token": [c.instrument_token for c in candles],
                "timeframe": [c.timeframe.value for c in candles],
                "time": _times([c.time for c in candles]),
                "open": [c.open for c in candles],
                "high": [c.high for c in candles],
                "low": [c.low for c in candles],
                "close": [c.close for c in candles],
                "volume": [c.volume for c in candles],
                "oi": [c.oi for c in candles],
                "source": [c.source for c in candles],
            }
        )
    if obi_5 is not None:
        if len(obi_5) != len(candles):
            raise ValueError(f"{len(obi_5)} obi_5 values for {len(candles)} candles")
        frame["obi_5"] = np.array([np.nan if v is None else v for v in obi_5], dtype=np.float64)
    return frame
