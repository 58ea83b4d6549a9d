"""Every TA-Lib-backed feature equals TA-Lib's own output on the full candle history."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.talib_catalog import ONE_MINUTE, context_calls

RTOL = 1e-9

# The context bars come from the one pandas oracle in conftest.py (``context_series``).
Oracle = Callable[[pd.DataFrame, int], tuple[pd.DataFrame, np.ndarray]]


def _assert_after_warmup(name: str, got: np.ndarray, want: np.ndarray, warm: int) -> None:
    assert np.isnan(got[:warm]).all(), f"{name} emitted before its warm-up {warm}"
    g, w = got[warm:], want[warm:]
    assert np.isfinite(w).all(), f"TA-Lib itself is not warm for {name} at the declared warm-up"
    np.testing.assert_allclose(g, w, rtol=RTOL, atol=0, err_msg=name)


@pytest.mark.parametrize("call", ONE_MINUTE, ids=lambda c: c.outputs[0][0])
def test_one_minute_talib_feature_equals_talib_on_full_history(
    call, calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    inputs = [candles_20k[i].to_numpy(dtype=np.float64) for i in call.inputs]
    out = getattr(talib, call.func)(*inputs, **call.params)
    outs = out if isinstance(out, tuple) else (out,)
    for name, idx in call.outputs:
        want = np.asarray(outs[idx], dtype=np.float64)
        _assert_after_warmup(name, features_20k[name].to_numpy(), want, calculator.warmups[name])


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_context_feature_equals_talib_on_closed_session_aligned_bars(
    minutes: int,
    calculator: FeatureCalculator,
    candles_20k: pd.DataFrame,
    features_20k: pd.DataFrame,
    context_oracle: Oracle,
) -> None:
    bars, close_rows = context_oracle(candles_20k, minutes)
    # Each 1m row sees the last context bar closed at or before it.
    last = np.searchsorted(close_rows, np.arange(len(candles_20k)), side="right") - 1
    checked = 0
    for call in context_calls(minutes):
        inputs = [bars[i].to_numpy(dtype=np.float64) for i in call.inputs]
        out = getattr(talib, call.func)(*inputs, **call.params)
        outs = out if isinstance(out, tuple) else (out,)
        for name, idx in call.outputs:
            if name not in calculator.warmups:
                continue  # an auxiliary context slot; covered through its derived feature
            series = np.asarray(outs[idx], dtype=np.float64)
            want = np.where(last >= 0, series[np.clip(last, 0, None)], np.nan)
            _assert_after_warmup(name, features_20k[name].to_numpy(), want, calculator.warmups[name])
            checked += 1
    assert checked == 3


def test_context_ema_distance_uses_context_ema_and_atr(
    candles_20k: pd.DataFrame,
    features_20k: pd.DataFrame,
    calculator: FeatureCalculator,
    context_oracle: Oracle,
) -> None:
    bars, close_rows = context_oracle(candles_20k, 15)
    last = np.searchsorted(close_rows, np.arange(len(candles_20k)), side="right") - 1
    ema = talib.EMA(bars["close"].to_numpy(), timeperiod=20)[last]
    atr = talib.ATR(*(bars[c].to_numpy() for c in ("high", "low", "close")), timeperiod=14)[last]
    want = (candles_20k["close"].to_numpy() - ema) / atr
    warm = calculator.warmups["ema_dist_20_atr_14_15m"]
    np.testing.assert_allclose(
        features_20k["ema_dist_20_atr_14_15m"].to_numpy()[warm:], want[warm:], rtol=RTOL
    )
