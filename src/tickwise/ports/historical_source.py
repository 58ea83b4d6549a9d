"""Where past market data comes from: the broker's instrument dump and historical candles.

``adapters.kite.rest.KiteRestClient`` implements both roles (against Kite or the simulator); tests use
the fakes in ``tests/fakes.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

import pandas as pd

from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe


class HistoricalSource(Protocol):
    async def historical_frame(
        self,
        instrument_token: int,
        interval: Timeframe | str,
        start: datetime | date,
        end: datetime | date,
    ) -> pd.DataFrame:
        """Candles of ``[start, end]`` as a frame with the ``candles`` table's columns
        (``time, open, high, low, close, volume, oi``), oldest first."""
        ...


class InstrumentSource(Protocol):
    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        """The day's instrument dump (all exchanges, or one)."""
        ...
