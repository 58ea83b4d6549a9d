"""The ports the historical pipeline runs against, as one typed context.

``bootstrap.historical.HistoricalContext`` (Timescale repositories, the local model store) satisfies it,
and so do the in-memory fakes of ``tests/fakes.py``; ``mypy --strict`` checks both. Members are
read-only properties so a context may hold concrete adapters (a subtype of each port).
"""

from __future__ import annotations

from typing import Protocol

from tickwise.domain.calendar import SessionCalendar
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.ports.model_store import ModelStore
from tickwise.ports.repositories import (
    BackfillLogRepository,
    CandleRepository,
    FeatureRepository,
    InstrumentRepository,
    LabelRepository,
    ModelRepository,
    SignalRepository,
)
from tickwise.ports.signal_members import SignalMemberRepository


class HistoricalPorts(Protocol):
    @property
    def options(self) -> HistoricalOptions: ...
    @property
    def calendar(self) -> SessionCalendar: ...
    @property
    def instruments(self) -> InstrumentRepository: ...
    @property
    def candles(self) -> CandleRepository: ...
    @property
    def features(self) -> FeatureRepository: ...
    @property
    def labels(self) -> LabelRepository: ...
    @property
    def signals(self) -> SignalRepository: ...
    @property
    def models(self) -> ModelRepository: ...
    @property
    def backfill_log(self) -> BackfillLogRepository: ...
    @property
    def store(self) -> ModelStore: ...
    @property
    def signal_members(self) -> SignalMemberRepository: ...
