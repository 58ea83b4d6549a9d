"""Ichimoku as known at the bar: equal to an independent pandas computation, causal, live == batch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.kernels import ICHIMOKU_WARM

_DISTS = {
    "ichimoku_tenkan_dist_9_atr_14": "tenkan",
    "ichimoku_kijun_dist_26_atr_14": "kijun",
    "ichimoku_senkou_a_dist_9_26_atr_14": "senkou_a",
    "ichimoku_senkou_b_dist_52_atr_14": "senkou_b",
    "ichimoku_chikou_dist_26_atr_14": "chikou",
}


def _pandas_levels(c: pd.DataFrame) -> dict[str, pd.Series]:
    """The textbook lines; the spans are shifted FORWARD by 26 in charts, so at bar t the cloud
    drawn is the one computed at t - 26 (``shift(26)``), and chikou compares with the close 26 back."""

    def mid(w: int) -> pd.Series:
        return (c["high"].rolling(w).max() + c["low"].rolling(w).min()) / 2.0

    tenkan, kijun = mid(9), mid(26)
    return {
        "tenkan": tenkan,
        "kijun": kijun,
        "senkou_a": ((tenkan + kijun) / 2.0).shift(26),
        "senkou_b": mid(52).shift(26),
        "chikou": c["close"].shift(26),
    }


@pytest.fixture(scope="module")
def gapped(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    return candle_factory(8_000, seed=41, drop_every=29)


@pytest.mark.parametrize("name", list(_DISTS))
def test_ichimoku_distance_equals_an_independent_pandas_computation(
    name: str, calculator: FeatureCalculator, gapped: pd.DataFrame
) -> None:
    got = calculator.compute(gapped)[name].to_numpy()
    level = _pandas_levels(gapped)[_DISTS[name]].to_numpy()
    h, lo, c = (gapped[k].to_numpy() for k in ("high", "low", "close"))
    atr = talib.ATR(h, lo, c, timeperiod=14)
    want = (c - level) / atr
    warm = calculator.warmups[name]
    assert np.isnan(got[:warm]).all()
    assert np.array_equal(got[warm:], want[warm:])
    assert np.isfinite(got[warm:]).all()


def test_ichimoku_warmups_follow_the_longest_window_and_the_shift(calculator: FeatureCalculator) -> None:
    w = calculator.warmups
    assert w["ichimoku_tenkan_dist_9_atr_14"] == 14  # ATR(14) is the later input
    assert w["ichimoku_kijun_dist_26_atr_14"] == 25
    assert w["ichimoku_senkou_a_dist_9_26_atr_14"] == 25 + 26
    assert w["ichimoku_senkou_b_dist_52_atr_14"] == 51 + 26
    assert w["ichimoku_chikou_dist_26_atr_14"] == 26
    assert set(ICHIMOKU_WARM).isdisjoint(calculator.names)  # raw price levels stay auxiliary


def test_ichimoku_at_a_bar_does_not_change_when_later_bars_change(
    calculator: FeatureCalculator, gapped: pd.DataFrame
) -> None:
    cut = 5_000
    full = calculator.compute(gapped)
    changed = gapped.copy()
    changed.loc[changed.index[cut:], ["open", "high", "low", "close"]] *= 1.5
    head = calculator.compute(changed)
    for name in _DISTS:
        assert np.array_equal(full[name].to_numpy()[:cut], head[name].to_numpy()[:cut], equal_nan=True)


def test_ichimoku_streamed_bars_equal_batch(calculator: FeatureCalculator, gapped: pd.DataFrame) -> None:
    split = len(gapped) - 120
    stream = calculator.open_stream(gapped.iloc[:split])
    rows = [stream.update(bar) for bar in gapped.iloc[split:].itertuples(index=False)]
    batch = calculator.compute(gapped)
    for name in _DISTS:
        col = calculator.names.index(name)
        live = np.array([r[col] for r in rows])
        assert np.array_equal(live, batch[name].to_numpy()[split:], equal_nan=True)
