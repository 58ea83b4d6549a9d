"""Storage roles. Implementations: ``adapters.timescale`` (asyncpg); fakes in ``tests/fakes.py``.

Bulk data crosses these ports as pandas DataFrames ("frames") with the table's column names; small
live batches may use domain objects. A candle frame has columns
``instrument_token, timeframe, time, open, high, low, close, volume, oi, source`` with ``time`` a
tz-aware datetime64 column (the candle's open instant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from tickwise.domain.candle import Candle
from tickwise.domain.instrument import Instrument
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.timeframe import Timeframe

# What a bulk write does with a row whose key is already stored: keep the stored row, or overwrite it.
OnConflict = Literal["nothing", "update"]


class InstrumentRepository(Protocol):
    async def upsert_many(self, instruments: Sequence[Instrument]) -> int: ...
    async def all(self, *, active_only: bool = True) -> list[Instrument]: ...
    async def by_symbols(self, exchange: str, symbols: Sequence[str]) -> list[Instrument]: ...
    async def deactivate_missing(
        self, present_tokens: Sequence[int], *, exchanges: Sequence[str] | None = None
    ) -> int:
        """Mark active instruments whose token is not in ``present_tokens`` inactive (only on
        ``exchanges`` when given); returns how many were marked."""
        ...


class TickRepository(Protocol):
    async def add_many(self, ticks: Sequence[Tick]) -> int: ...


class CandleRepository(Protocol):
    async def add_many(self, candles: Sequence[Candle], *, on_conflict: OnConflict = ...) -> int: ...
    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = ...) -> int: ...
    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame: ...
    async def read_many(
        self,
        instrument_tokens: Sequence[int] | None,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame: ...
    async def latest(self, instrument_token: int, timeframe: Timeframe, n: int) -> pd.DataFrame: ...
    async def last_time(self, instrument_token: int | None, timeframe: Timeframe) -> datetime | None: ...
    async def first_time(self, instrument_token: int, timeframe: Timeframe) -> datetime | None: ...
    async def count(self, instrument_token: int | None = None, timeframe: Timeframe | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class FeatureMatrix:
    """One instrument's feature rows as arrays, for bulk reads that need no frame (the training load).

    ``times``: int64 nanoseconds since the Unix epoch (UTC), ascending; ``values``: ``(len(times),
    len(columns))`` float64, C-ordered, NaN where the stored value is NULL (warm-up)."""

    times: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.times.shape[0])


class FeatureRepository(Protocol):
    async def add_frame(
        self, frame: pd.DataFrame, feature_set: str, *, on_conflict: OnConflict = ...
    ) -> int: ...
    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """``columns=None``: every feature of the set; ``columns=[]``: only the key columns."""
        ...

    async def read_matrix(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str],
    ) -> FeatureMatrix:
        """The rows of :meth:`read_frame` (``start <= time < end``, oldest first) with ``columns`` as one
        float64 matrix: the same values bit for bit, without a frame or a Python object per value."""
        ...


class LabelRepository(Protocol):
    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = ...) -> int: ...
    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        side: int | None = None,
    ) -> pd.DataFrame: ...
    async def replace_meta(
        self,
        timeframe: Timeframe,
        instrument_tokens: Sequence[int],
        start: datetime,
        end: datetime | None,
        meta: pd.DataFrame,
    ) -> int: ...


class SignalRepository(Protocol):
    # latency_ms: each signal's latency, stored instead of its own field (the live sink measures it
    # at write time and passes it alongside rather than rebuilding every signal to carry it).
    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int: ...
    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = ...) -> int: ...
    async def read_frame(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        mode: str | None = None,
        model_version: str | None = None,
        instrument_token: int | None = None,
        timeframe: Timeframe | None = None,
    ) -> pd.DataFrame: ...


# 'fold': a walk-forward fold model that scored out-of-sample history (core.walk_forward).
ModelStatus = Literal["champion", "challenger", "retired", "fold"]


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One row of the ``models`` table: a trained model version and what it was trained on."""

    model_version: str
    feature_set: str
    feature_names: tuple[str, ...]
    # JSON columns: numbers, strings, lists, dicts (metrics: numbers or null).
    params: Mapping[str, object] = field(default_factory=dict)
    metrics: Mapping[str, object] = field(default_factory=dict)
    status: ModelStatus = "challenger"
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    mlflow_run_id: str | None = None
    label_spec: Mapping[str, object] | None = None
    feature_spec: Mapping[str, object] | None = None
    artifact_path: str | None = None
    created_at: datetime | None = None  # set by the database on insert


class ModelRepository(Protocol):
    async def insert(self, record: ModelRecord) -> None: ...
    async def get(self, model_version: str) -> ModelRecord | None: ...
    async def champion(self) -> ModelRecord | None: ...
    async def list(self, *, status: ModelStatus | None = None) -> list[ModelRecord]: ...
    async def set_status(self, model_version: str, status: ModelStatus) -> None: ...


class BackfillLogRepository(Protocol):
    async def record(self, instrument_token: int, timeframe: Timeframe, day: date, rows: int) -> None: ...
    async def done_days(
        self, instrument_token: int, timeframe: Timeframe, start: date, end: date
    ) -> set[date]: ...
