"""Plain, frozen domain types. Standard library only."""

from tickwise.domain.candle import Candle
from tickwise.domain.errors import TickwiseError
from tickwise.domain.instrument import Instrument
from tickwise.domain.signal import Signal
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST, TimeRange
from tickwise.domain.timeframe import Timeframe

__all__ = [
    "IST",
    "OHLC",
    "Candle",
    "Depth",
    "DepthLevel",
    "Instrument",
    "Signal",
    "Tick",
    "TickwiseError",
    "TimeRange",
    "Timeframe",
]
