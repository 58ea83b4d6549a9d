"""What the historical pipeline is told to do, as plain typed values.

The composition root (``bootstrap.historical.historical_options``) maps ``config.Settings`` to these,
so the pipeline never reads configuration and a test builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickwise.core.fitting import TrainConfig
from tickwise.core.labels import LabelSpec
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.models import SignalOptions


@dataclass(frozen=True, slots=True)
class HistoricalOptions:
    symbols: tuple[str, ...] = ()  # empty: default_symbols, else the NSE equity universe (pipelines.universe)
    default_symbols: tuple[str, ...] = ()  # a real account's default list (bootstrap.universe)
    backfill_days: int = 60  # trading sessions to backfill when no --from is given
    timeframes: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M60)
    signal_timeframe: Timeframe = Timeframe.M1
    label_spec: LabelSpec = field(default_factory=LabelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    signals: SignalOptions = field(default_factory=SignalOptions)
    chunk_sessions: int = 40  # sessions per derive chunk (compute.chunk_sessions, docs/scaling.md)
