"""The simple TA-Lib indicators computed in the numba step equal TA-Lib bit for bit, also on odd bars."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.kernels import NATIVE_TALIB
from tickwise.core.features.talib_catalog import ONE_MINUTE

_CALLS = {name: (call, idx) for call in ONE_MINUTE for name, idx in call.outputs}


def _odd_candles(make: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Flat bars, sub-1e-8 ranges, zero volume, closes outside the bar range and a flat price run."""
    c = make(6_000, seed=13)
    rng = np.random.default_rng(0)
    flat = rng.random(len(c)) < 0.1
    for col in ("open", "high", "low"):
        c.loc[flat, col] = c.loc[flat, "close"]
    tiny = rng.random(len(c)) < 0.05
    c.loc[tiny, "high"] = c.loc[tiny, "low"] + 1e-9
    c.loc[rng.random(len(c)) < 0.05, "volume"] = 0.0
    c.loc[2000:2099, ["open", "high", "low", "close"]] = 1.0
    return c


@pytest.mark.parametrize("name", [n for n, _, _ in NATIVE_TALIB])
def test_native_indicator_is_bit_identical_to_talib_on_odd_bars(
    name: str, calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    candles = _odd_candles(candle_factory)
    call, idx = _CALLS[name]
    out = getattr(talib, call.func)(
        *[candles[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params
    )
    want = out[idx] if isinstance(out, tuple) else out
    got = calculator.compute(candles)[name].to_numpy()
    warm = calculator.warmups[name]
    assert np.isnan(got[:warm]).all()
    assert np.array_equal(got[warm:], want[warm:])


def test_native_indicators_are_not_also_run_through_talib(calculator: FeatureCalculator) -> None:
    native = {n for n, _, _ in NATIVE_TALIB}
    left = {name for call in calculator.layout.talib_1m for name, _ in call.outputs}
    assert native.isdisjoint(left)
    assert native | left == {name for call in ONE_MINUTE for name, _ in call.outputs}


@pytest.fixture(scope="module")
def long_gapped(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """60k real-shaped bars (volatility clusters, U-shaped volume) with every 37th minute missing."""
    return candle_factory(60_000, seed=29, drop_every=37)


@pytest.mark.parametrize("name", [n for n, _, _ in NATIVE_TALIB])
def test_native_indicator_is_bit_identical_to_talib_over_a_long_gapped_history(
    name: str, calculator: FeatureCalculator, long_gapped: pd.DataFrame
) -> None:
    call, idx = _CALLS[name]
    out = getattr(talib, call.func)(
        *[long_gapped[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params
    )
    want = out[idx] if isinstance(out, tuple) else out
    got = calculator.compute(long_gapped)[name].to_numpy()
    warm = calculator.warmups[name]
    assert np.array_equal(got[warm:], want[warm:])
    assert np.isfinite(got[warm:]).all()


@pytest.fixture(scope="module")
def tick_sized(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Prices on NSE's 0.05 tick: equal opens, closes and extremes are common, so the candle patterns'
    ``>=`` / ``<`` boundaries and the 80-valued ENGULFING / HARAMI branches are exercised."""
    c = candle_factory(30_000, seed=3)
    for col in ("open", "high", "low", "close"):
        c[col] = np.round(c[col] / 0.05) * 0.05
    c["high"] = c[["open", "high", "low", "close"]].max(axis=1)
    c["low"] = c[["open", "high", "low", "close"]].min(axis=1)
    return c


@pytest.fixture(scope="module")
def tick_sized_features(calculator: FeatureCalculator, tick_sized: pd.DataFrame) -> pd.DataFrame:
    return calculator.compute(tick_sized)


@pytest.mark.parametrize("name", [n for n, _, _ in NATIVE_TALIB])
def test_native_indicator_is_bit_identical_to_talib_on_tick_sized_prices(
    name: str, calculator: FeatureCalculator, tick_sized: pd.DataFrame, tick_sized_features: pd.DataFrame
) -> None:
    call, idx = _CALLS[name]
    out = getattr(talib, call.func)(
        *[tick_sized[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params
    )
    want = out[idx] if isinstance(out, tuple) else out
    got = tick_sized_features[name].to_numpy()
    warm = calculator.warmups[name]
    assert np.array_equal(got[warm:], want[warm:])


def test_every_candle_pattern_fires_on_tick_sized_prices(tick_sized_features: pd.DataFrame) -> None:
    """The equality checks above would pass vacuously if a replica never left 0."""
    for name in (n for n, f, _ in NATIVE_TALIB if f.startswith("CDL")):
        assert np.count_nonzero(np.nan_to_num(tick_sized_features[name].to_numpy())) > 0, name


def test_linearreg_slope_replica_follows_talib_through_its_drift_guard(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    """A 1000x price jump makes |14 * leaving close| exceed 100 * the window's sum of |close|, which
    makes ta-lib 0.8.1 re-sum the window; the replica must take the same branch."""
    c = candle_factory(3_000, seed=5)
    c.loc[1_000:1_049, ["open", "high", "low", "close"]] *= 1000.0
    want = talib.LINEARREG_SLOPE(c["close"].to_numpy(dtype=np.float64), timeperiod=14)
    got = calculator.compute(c)["linearreg_slope_14"].to_numpy()
    assert np.array_equal(got[13:], want[13:])


def test_the_exact_python_fma_of_interpreted_runs_equals_the_hardware_fma() -> None:
    from numba import njit

    from tickwise.core.features import fma as fma_module

    @njit(cache=False)
    def fused(a: float, b: float, c: float) -> float:
        return fma_module._fma_intrinsic(a, b, c)  # type: ignore[no-any-return]

    rng = np.random.default_rng(11)
    a, b, c = rng.normal(0, 1e3, (3, 2_000))
    a[:5] = [np.inf, np.nan, 0.0, -0.0, 1e308]
    got = np.array([fma_module._fma_exact(x, y, z) for x, y, z in zip(a, b, c, strict=True)])
    want = np.array([fused(x, y, z) for x, y, z in zip(a, b, c, strict=True)])
    assert np.array_equal(got, want, equal_nan=True)
    with np.errstate(over="ignore"):
        unfused = a * b + c
    assert not np.array_equal(got, unfused, equal_nan=True)  # the cases do exercise the single rounding
