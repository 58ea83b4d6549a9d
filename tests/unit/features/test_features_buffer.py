"""A reused slot buffer gives exactly the features of fresh memory, instrument after instrument."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tickwise.core.features.calculator import FeatureCalculator, SlotBuffer


def test_features_computed_in_a_reused_buffer_equal_fresh_ones_for_each_instrument(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    buffer = SlotBuffer()
    # Long, short, then long again: the buffer grows once and is then reused (stale values behind).
    for n, seed in ((4_000, 1), (900, 2), (3_500, 3)):
        candles = candle_factory(n, seed=seed, drop_every=11 if seed == 2 else 0)
        fresh = calculator.compute(candles)
        reused = calculator.compute(candles, buffer=buffer)
        values = reused[calculator.names].to_numpy()
        assert np.array_equal(values.view(np.int64), fresh[calculator.names].to_numpy().view(np.int64))
        assert reused["time"].equals(fresh["time"])
    assert buffer.nbytes >= 4_000 * len(calculator.names) * 8


def test_a_frame_from_the_buffer_lives_in_the_buffer_not_in_fresh_memory(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    buffer = SlotBuffer()
    candles = candle_factory(1_000, seed=5)
    first = calculator.compute(candles, buffer=buffer)
    block = buffer.matrix(calculator.layout.n_slots, len(candles))
    assert np.shares_memory(first[calculator.names[0]].to_numpy(), block)
