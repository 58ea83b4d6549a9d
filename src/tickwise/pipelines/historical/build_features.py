"""Compute features per instrument for the signal timeframe from the anchor (the instrument's first
stored candle) and store them.

Features of a bar depend only on bars from the anchor up to it, so rows already stored are unchanged by
later candles: a run computes the whole history (cheap: ~0.2 s per 25k bars) but writes only rows newer
than the newest stored row of the instrument and feature set (resumable after a kill, idempotent).

The feature matrix of each instrument is computed into a reused :class:`SlotBuffer` (one per concurrent
call, kept by the process between calls): a fresh ~150-row float64 matrix per instrument is fresh memory
each time, whose page faults made the first run in a process several times slower than a warm one
(docs/benchmarks.md). The values are identical with or without the buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from tickwise.core.features.calculator import FeatureCalculator, SlotBuffer
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import FeatureRepository


@dataclass
class FeatureStepResult:
    instrument_token: int
    computed: int
    written: int


# Free buffers of this process. A call takes one for as long as it holds the frame computed into it
# (until its rows are written), so concurrent calls never share one.
_FREE_BUFFERS: list[SlotBuffer] = []


@contextmanager
def slot_buffer() -> Iterator[SlotBuffer]:
    """A :class:`SlotBuffer` of this process's pool, returned to it afterwards (grown to the largest
    instrument computed so far, so later instruments touch no fresh pages)."""
    buffer = _FREE_BUFFERS.pop() if _FREE_BUFFERS else SlotBuffer()
    try:
        yield buffer
    finally:
        _FREE_BUFFERS.append(buffer)


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
    with slot_buffer() as buffer:
        return await _compute_and_write(token, candles, calculator, feature_repo, timeframe, buffer)


async def _compute_and_write(
    token: int,
    candles: pd.DataFrame,
    calculator: FeatureCalculator,
    feature_repo: FeatureRepository,
    timeframe: Timeframe,
    buffer: SlotBuffer,
) -> FeatureStepResult:
    # The frame's columns live in ``buffer``: they are written before the buffer is released.
    frame = calculator.compute(candles.reset_index(drop=True), buffer)
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
