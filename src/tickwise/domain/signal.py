"""A model's trading signal for one closed bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickwise.domain.timeframe import Timeframe


@dataclass(frozen=True, slots=True)
class Signal:
    instrument_token: int
    timeframe: Timeframe
    time: datetime  # open of the bar whose close produced the signal
    available_at: datetime  # first instant the signal could be acted on
    model_version: str
    direction: int  # -1, 0, +1
    confidence: float  # 0..1
    mode: str  # 'historical' or 'live'
    feature_set: str
    latency_ms: float | None = None
    size: float | None = None  # suggested position size (fraction of capital), capped Kelly
    meta_prob: float | None = None  # the meta model's P(this trade clears costs); None: no meta model
    meta_size: float | None = None  # position scale 0..1 the meta probability gives (trade engine)
