"""Compute features per instrument for the signal timeframe from the anchor (the instrument's first
stored candle) and store them.

Features of a bar depend only on bars from the anchor up to it, so rows already stored are unchanged by
later candles: a run computes the whole history (cheap: ~0.2 s per 25k bars) but writes only rows newer
than the newest stored row of the instrument and feature set (resumable after a kill, idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import FeatureRepository


@dataclass
class FeatureStepResult:
    instrument_token: int
    computed: int
    written: int


async def build_features(
    token: int,
    candles: pd.DataFrame,
    calculator: FeatureCalculator,
    feature_repo: FeatureRepository,
    timeframe: Timeframe = Timeframe.M1,
) -> FeatureStepResult:
    """``candles``: the instrument's full 1m history from its anchor, oldest first."""
    if candles.empty:
        return FeatureStepResult(token, 0, 0)
    frame = calculator.compute(candles.reset_index(drop=True))
    stored = await feature_repo.read_frame(token, timeframe, calculator.feature_set, None, None, columns=[])
    if len(stored):
        newest = pd.DatetimeIndex(stored["time"]).max()
        frame = frame[pd.DatetimeIndex(frame["time"]) > newest]
    if frame.empty:
        return FeatureStepResult(token, len(candles), 0)
    frame.insert(0, "timeframe", str(timeframe))
    frame.insert(0, "instrument_token", token)
    written = await feature_repo.add_frame(frame, calculator.feature_set)
    return FeatureStepResult(token, len(candles), int(written))
