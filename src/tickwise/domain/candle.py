"""One OHLCV candle, stamped at its open instant (Kite's convention)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tickwise.domain.errors import DataValidationError
from tickwise.domain.timeframe import Timeframe

# Column names of a "candle frame" (one row per candle, as in the ``candles`` table), shared by every
# layer that moves candles in bulk as DataFrames.
CANDLE_FRAME_COLUMNS: tuple[str, ...] = (
    "instrument_token",
    "timeframe",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "oi",
    "source",
)


@dataclass(frozen=True, slots=True)
class Candle:
    instrument_token: int
    timeframe: Timeframe
    time: datetime  # open instant, tz-aware
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None = None
    source: str = "historical"  # 'historical' or 'live'

    def validate(self) -> None:
        """Raise DataValidationError naming the first broken invariant."""
        problem = candle_problem(
            self.timeframe, self.time, self.open, self.high, self.low, self.close, self.volume
        )
        if problem:
            raise DataValidationError(
                f"invalid candle {self.instrument_token} {self.timeframe} {self.time.isoformat()}: {problem}"
            )


def candle_problem(
    timeframe: object,
    time: datetime,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
) -> str | None:
    """Return why a candle's values are invalid, or None when they are consistent."""
    if not isinstance(timeframe, Timeframe):
        try:
            Timeframe(str(timeframe))
        except ValueError:
            return f"unknown timeframe {timeframe!r}"
    if time.tzinfo is None:
        return "naive timestamp"
    for name, value in (("open", open_), ("high", high), ("low", low), ("close", close)):
        if not math.isfinite(value):
            return f"{name} is {value}"
        if value <= 0:
            return f"{name} is not positive ({value})"
    if high < low:
        return f"high {high} < low {low}"
    if not (low <= open_ <= high and low <= close <= high):
        return f"open/close outside [low, high] ({open_}, {close} vs [{low}, {high}])"
    if not math.isfinite(volume) or volume < 0:
        return f"volume is {volume}"
    return None
