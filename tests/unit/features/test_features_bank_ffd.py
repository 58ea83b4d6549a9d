"""The bank's FFD, computed for four instruments side by side after the step, equals each stream's own
FFD bit for bit, also for instruments whose FFD window fills during the minutes stepped."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator


def test_instruments_crossing_the_ffd_window_in_one_bank_step_equal_their_single_streams(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    window = len(calculator.layout.ffd_w)
    ffd = calculator.names.index(f"ffd_{round(calculator.spec.ffd_d * 100)}")
    live = 12
    # Histories ending just before, at and after the bar where FFD's window fills, in groups of four
    # that mix filled and unfilled windows, plus a remainder of three (not a multiple of four).
    lengths = [window - 8, window - 2, window - 1, window, window + 3, window - 5, window + 40, 2 * window]
    lengths += [window - 1, window + 1, 3 * window]
    frames = {k: candle_factory(n + live, seed=70 + k) for k, n in enumerate(lengths)}
    bank = FeatureBank(calculator.layout, capacity=len(frames))
    singles = {}
    for k, frame in frames.items():
        history = frame.iloc[: len(frame) - live].reset_index(drop=True)
        bank.attach(k, calculator.open_stream(history))
        singles[k] = calculator.open_stream(history)
    keys = list(frames)
    filled = set()
    for b in range(live):
        bars = [frames[k].iloc[len(frames[k]) - live + b] for k in keys]
        rows, errors = bank.update_many(keys, bars)
        assert errors == [None] * len(keys)
        want = np.array([singles[k].update(bar) for k, bar in zip(keys, bars, strict=True)])
        assert np.array_equal(rows.view(np.int64), want.view(np.int64)), b
        filled |= {k for k in keys if np.isfinite(rows[k, ffd])}
    # The windows really filled during the test for some instruments and not for others.
    assert {k for k in keys if lengths[k] + live < window} == set(keys) - filled
    assert any(lengths[k] < window - 1 <= lengths[k] + live - 1 for k in keys)


@pytest.mark.interpreted
def test_five_instruments_around_the_ffd_window_equal_their_single_streams_also_interpreted(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # Small enough for the `interpreted` pass (NUMBA_DISABLE_JIT=1), which measures the kernels'
    # coverage: one group of four (filled and unfilled windows mixed) and a remainder of one.
    window = len(calculator.layout.ffd_w)
    live = 4
    lengths = [window - 3, window - 1, window + 2, window + 5, window]
    frames = {k: candle_factory(n + live, seed=90 + k) for k, n in enumerate(lengths)}
    bank = FeatureBank(calculator.layout, capacity=len(frames))
    singles = {}
    for k, frame in frames.items():
        singles[k] = calculator.open_stream(frame.iloc[: len(frame) - live].reset_index(drop=True))
        bank.attach(k, singles[k].copy())
    keys = list(frames)
    for b in range(live):
        bars = [frames[k].iloc[len(frames[k]) - live + b] for k in keys]
        rows, errors = bank.update_many(keys, bars)
        assert errors == [None] * len(keys)
        want = np.array([singles[k].update(bar) for k, bar in zip(keys, bars, strict=True)])
        assert np.array_equal(rows.view(np.int64), want.view(np.int64)), b
