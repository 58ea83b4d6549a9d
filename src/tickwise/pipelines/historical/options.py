"""What the historical pipeline is told to do, as plain typed values.

The composition root (``bootstrap.historical.historical_options``) maps ``config.Settings`` to these,
so the pipeline never reads configuration and a test builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickwise.core.ensemble import EnsembleSpec
from tickwise.core.fitting import TrainConfig
from tickwise.core.labels import LabelSpec
from tickwise.core.meta_training import MetaTrainConfig
from tickwise.core.regime import RegimeSpec
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.models import SignalOptions


@dataclass(frozen=True, slots=True)
class HistoricalOptions:
    symbols: tuple[str, ...] = ()  # empty: default_symbols, else the NSE equity universe (pipelines.universe)
    default_symbols: tuple[str, ...] = ()  # a real account's default list (bootstrap.universe)
    backfill_days: int = 60  # trading sessions to backfill when no --from is given
    timeframes: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M60)
    signal_timeframe: Timeframe = Timeframe.M1
    # More signal timeframes (labels, features, fold models, signals each); the primary is always one.
    signal_timeframes: tuple[Timeframe, ...] = ()
    ensemble: EnsembleSpec | None = None  # None: no ensemble (and none with one timeframe)
    label_spec: LabelSpec = field(default_factory=LabelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    signals: SignalOptions = field(default_factory=SignalOptions)
    meta: MetaTrainConfig = field(default_factory=MetaTrainConfig)  # signals.meta (meta_step None: off)
    # The regime layer fitted with every model on its training window; None: models without one.
    regime: RegimeSpec | None = field(default_factory=RegimeSpec)
    chunk_sessions: int = 40  # sessions per derive chunk (compute.chunk_sessions, docs/scaling.md)

    @property
    def all_signal_timeframes(self) -> tuple[Timeframe, ...]:
        """The primary ``signal_timeframe`` first, then the others (each once)."""
        return tuple(dict.fromkeys((self.signal_timeframe, *self.signal_timeframes)))
