"""The live stream (open_stream + update per closed bar) gives exactly the batch feature rows.

Every feature is asserted bit-identical (``array_equal`` with NaN == NaN): TA-Lib handles are opened on
the full history and updated bar by bar, custom kernels fold the same compiled step, FFD sums its terms
in the same order, and derived features are the same elementwise kernel. No tolerance is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.errors import DataValidationError


def _stream_rows(calc: FeatureCalculator, candles: pd.DataFrame, n_live: int) -> np.ndarray:
    stream = calc.open_stream(candles.iloc[:-n_live].reset_index(drop=True))
    return np.array([stream.update(bar) for bar in candles.iloc[-n_live:].itertuples(index=False)])


def _assert_identical(calc: FeatureCalculator, live: np.ndarray, batch: pd.DataFrame) -> None:
    want = batch[calc.names].to_numpy()
    differing = [
        name
        for j, name in enumerate(calc.names)
        if not np.array_equal(live[:, j], want[:, j], equal_nan=True)
    ]
    assert differing == []


def test_streaming_last_300_bars_equals_batch_for_every_feature(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    live = _stream_rows(calculator, candles_20k, 300)
    _assert_identical(calculator, live, features_20k.iloc[-300:])
    assert np.isfinite(live).all()  # the last 300 bars are far past every warm-up


def test_streaming_with_missing_minutes_equals_batch(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # Dropping every 15th minute removes the closing minute of many 5/15/60m buckets, so context bars
    # close late (on the next bucket's first candle) in both paths.
    candles = candle_factory(6_000, seed=3, drop_every=15)
    live = _stream_rows(calculator, candles, 400)
    _assert_identical(calculator, live, calculator.compute(candles).iloc[-400:])


def test_stream_opened_on_a_short_history_warms_up_like_batch(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # 40 bars is shorter than most TA-Lib lookbacks and than any context series: handles open later.
    candles = candle_factory(1_600, seed=5)
    live = _stream_rows(calculator, candles, 1_560)
    _assert_identical(calculator, live, calculator.compute(candles).iloc[-1_560:])


def test_stream_accepts_mappings_and_returns_named_rows(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    stream = calculator.open_stream(candles_20k.iloc[:-1])
    bar = candles_20k.iloc[-1].to_dict()
    row = stream.update_dict(bar)
    assert list(row) == calculator.names
    assert row["rsi_14"] == features_20k["rsi_14"].iloc[-1]
    assert stream.bars_seen == len(candles_20k)


def test_stream_rejects_a_bar_that_is_not_after_the_previous_one(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame
) -> None:
    stream = calculator.open_stream(candles_20k.iloc[:1000])
    with pytest.raises(DataValidationError, match="not after"):
        stream.update(candles_20k.iloc[999].to_dict())


def test_stream_rejects_a_non_finite_price(calculator: FeatureCalculator, candles_20k: pd.DataFrame) -> None:
    stream = calculator.open_stream(candles_20k.iloc[:1000])
    bar = candles_20k.iloc[1000].to_dict() | {"close": float("nan")}
    with pytest.raises(DataValidationError, match="non-finite"):
        stream.update(bar)


def test_stream_state_is_picklable(calculator: FeatureCalculator, candles_20k: pd.DataFrame) -> None:
    import pickle

    stream = calculator.open_stream(candles_20k.iloc[:2000])
    state = pickle.loads(pickle.dumps(stream.state))
    assert state.bars_seen == 2000
    assert np.array_equal(state.fst, stream.state.fst)


def test_a_stream_opens_on_a_history_holding_a_single_hour_bar_and_warms_up_like_batch(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # 60 bars close exactly one 60m context bar: TA-Lib refuses to open ATR on it (a bad parameter,
    # not "insufficient history"), so the handle must wait like any other too-short one.
    candles = candle_factory(260, seed=8)
    live = _stream_rows(calculator, candles, 200)
    _assert_identical(calculator, live, calculator.compute(candles).iloc[-200:])
