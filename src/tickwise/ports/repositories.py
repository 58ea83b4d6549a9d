"""Storage roles. Implementations: ``adapters.timescale`` (asyncpg); fakes in ``tests/fakes.py``.

Bulk data crosses these ports as pandas DataFrames ("frames") with the table's column names; small
live batches may use domain objects. A candle frame has columns
``instrument_token, timeframe, time, open, high, low, close, volume, oi, source`` with ``time`` a
tz-aware datetime64 column (the candle's open instant).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import pandas as pd

from tickwise.domain.candle import Candle
from tickwise.domain.instrument import Instrument
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.timeframe import Timeframe


class InstrumentRepository(Protocol):
    async def upsert_many(self, instruments: Sequence[Instrument]) -> int: ...
    async def all(self, *, active_only: bool = True) -> list[Instrument]: ...
    async def by_symbols(self, exchange: str, symbols: Sequence[str]) -> list[Instrument]: ...


class TickRepository(Protocol):
    async def add_many(self, ticks: Sequence[Tick]) -> int: ...


class CandleRepository(Protocol):
    async def add_many(self, candles: Sequence[Candle]) -> int: ...
    async def add_frame(self, frame: pd.DataFrame) -> int: ...
    async def read_frame(
        self, instrument_token: int, timeframe: Timeframe, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame: ...
    async def latest(self, instrument_token: int, timeframe: Timeframe, n: int) -> pd.DataFrame: ...
    async def count(self, instrument_token: int | None = None, timeframe: Timeframe | None = None) -> int: ...


class FeatureRepository(Protocol):
    async def add_frame(self, frame: pd.DataFrame, feature_set: str) -> int: ...
    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None,
        end: datetime | None,
    ) -> pd.DataFrame: ...


class LabelRepository(Protocol):
    async def add_frame(self, frame: pd.DataFrame) -> int: ...
    async def read_frame(
        self, instrument_token: int, timeframe: Timeframe, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame: ...


class SignalRepository(Protocol):
    async def add_many(self, signals: Sequence[Signal]) -> int: ...
    async def read_frame(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        mode: str | None = None,
        model_version: str | None = None,
    ) -> pd.DataFrame: ...
