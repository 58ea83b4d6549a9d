"""The historical feature step computes into reused buffers and stores exactly the unbuffered values."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd

from fakes import InMemoryFeatureRepository
from tickwise.bench.features import synthetic_candles
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical import build_features as step


class _SlowWrites(InMemoryFeatureRepository):
    """Yields to the event loop before storing, so concurrent calls interleave while holding frames."""

    async def add_frame(self, frame: pd.DataFrame, feature_set: str, *, on_conflict: str = "update") -> int:  # type: ignore[override]
        await asyncio.sleep(0.01)
        return await super().add_frame(frame, feature_set)


def _stored(repo: InMemoryFeatureRepository, token: int, feature_set: str) -> pd.DataFrame:
    frame = asyncio.run(repo.read_frame(token, Timeframe.M1, feature_set))
    return frame.sort_values("time").reset_index(drop=True)


def test_buffered_feature_rows_equal_a_fresh_compute_for_concurrent_and_sequential_instruments() -> None:
    calculator = FeatureCalculator()
    # Different lengths: the buffer grows for the longer one and is reused (partly) by the shorter.
    histories = {
        1: synthetic_candles(3_000, seed=1),
        2: synthetic_candles(1_500, seed=2),
        3: synthetic_candles(2_200, seed=3),
    }
    repo = _SlowWrites()

    async def run() -> None:
        await asyncio.gather(
            *(step.build_features(t, c, calculator, repo) for t, c in list(histories.items())[:2])
        )
        await step.build_features(3, histories[3], calculator, repo)

    asyncio.run(run())
    assert len(step._FREE_BUFFERS) >= 2  # the two concurrent calls held two buffers at once
    for token, candles in histories.items():
        want = calculator.compute(candles.reset_index(drop=True))
        got = _stored(repo, token, calculator.feature_set)
        assert len(got) == len(candles)
        for name in calculator.names:
            assert np.array_equal(got[name].to_numpy(float), want[name].to_numpy(float), equal_nan=True), name


def test_the_pool_hands_a_released_buffer_to_the_next_call() -> None:
    with step.slot_buffer() as first:
        pass
    with step.slot_buffer() as second:
        assert second is first
