"""The context timeframes' indicators (RSI, NATR, ROC, ATR, EMA, BBANDS on the 5/15/60m bars) computed
in the compiled step equal TA-Lib's Function API on the context bar series bit for bit, held on every
1m row from the row its context bar closed on; TA-Lib stays the oracle, the aggregation is pandas'."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.calculator import FeatureCalculator, _inputs
from tickwise.core.features.engine import KernelParams, batch
from tickwise.core.features.kernels import NATIVE_CONTEXT
from tickwise.core.features.layout import build_layout
from tickwise.core.features.spec import FeatureSpec
from tickwise.core.features.talib_catalog import TalibCall, context_calls

Oracle = Callable[[pd.DataFrame, int], tuple[pd.DataFrame, np.ndarray]]
NAMES = [name for name, _, _ in NATIVE_CONTEXT]
TIMEFRAMES = FeatureSpec().timeframes


def _slot_matrix(calc: FeatureCalculator, candles: pd.DataFrame) -> np.ndarray:
    """Every slot of the batch run, the auxiliary context levels (ATR, EMA, bands) included."""
    return batch(calc.layout, KernelParams.of(calc.layout), _inputs(candles)).m


def _talib_held(candles: pd.DataFrame, oracle: Oracle, tf: int, name: str) -> np.ndarray:
    """TA-Lib's output for ``name`` on the ``tf``-minute bars, held on each 1m row from its close."""
    bars, usable = oracle(candles, tf)
    call = next(c for c in context_calls(tf) for n, _ in c.outputs if n == f"{name}_{tf}m")
    idx = dict(call.outputs)[f"{name}_{tf}m"]
    out = getattr(talib, call.func)(*[bars[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params)
    series = np.asarray(out[idx] if isinstance(out, tuple) else out)
    last = np.searchsorted(usable, np.arange(len(candles)), side="right") - 1
    return np.where(last >= 0, series[np.clip(last, 0, None)], np.nan)


def _assert_bit_identical(calc: FeatureCalculator, m: np.ndarray, want: np.ndarray, slot: str) -> None:
    got = m[calc.layout.slots[slot]]
    # features are masked before their warm-up; the auxiliary levels are not
    warm = calc.warmups.get(slot, 0)
    assert np.isnan(got[:warm]).all(), slot
    assert np.array_equal(got[warm:], want[warm:], equal_nan=True), slot
    assert np.isfinite(got[calc.warmup :]).all(), slot  # the comparison is not of NaN runs


@pytest.fixture(scope="module")
def odd(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Flat bars, sub-1e-8 ranges, zero volume and a flat price run long enough to flatten whole hour
    bars (Wilder's sums at 0, the variance re-seeded), on a history with missing minutes."""
    c = candle_factory(12_000, seed=17, drop_every=23)
    rng = np.random.default_rng(1)
    flat = rng.random(len(c)) < 0.1
    for col in ("open", "high", "low"):
        c.loc[flat, col] = c.loc[flat, "close"]
    tiny = rng.random(len(c)) < 0.05
    c.loc[tiny, "high"] = c.loc[tiny, "low"] + 1e-9
    c.loc[rng.random(len(c)) < 0.05, "volume"] = 0.0
    c.loc[4_000:5_499, ["open", "high", "low", "close"]] = 1.0
    return c


@pytest.fixture(scope="module")
def long_gapped(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """60k real-shaped bars (160 sessions) with every 37th minute missing: context bars close late."""
    return candle_factory(60_000, seed=29, drop_every=37)


@pytest.fixture(scope="module")
def tick_sized(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Prices on NSE's 0.05 tick with a 50x jump: equal closes (zero changes) and the variance's
    re-seeding branches."""
    c = candle_factory(30_000, seed=3)
    c.loc[15_000:15_400, ["open", "high", "low", "close"]] *= 50.0
    for col in ("open", "high", "low", "close"):
        c[col] = np.round(c[col] / 0.05) * 0.05
    c["high"] = c[["open", "high", "low", "close"]].max(axis=1)
    c["low"] = c[["open", "high", "low", "close"]].min(axis=1)
    return c


@pytest.fixture(scope="module")
def matrices(
    calculator: FeatureCalculator, odd: pd.DataFrame, long_gapped: pd.DataFrame, tick_sized: pd.DataFrame
) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    return {
        name: (frame, _slot_matrix(calculator, frame))
        for name, frame in (("odd", odd), ("long_gapped", long_gapped), ("tick_sized", tick_sized))
    }


@pytest.mark.parametrize("history", ["odd", "long_gapped", "tick_sized"])
@pytest.mark.parametrize("tf", TIMEFRAMES)
@pytest.mark.parametrize("name", NAMES)
def test_context_indicator_is_bit_identical_to_talib_on_the_context_bars(
    name: str,
    tf: int,
    history: str,
    calculator: FeatureCalculator,
    matrices: dict[str, tuple[pd.DataFrame, np.ndarray]],
    context_oracle: Oracle,
) -> None:
    candles, m = matrices[history]
    want = _talib_held(candles, context_oracle, tf, name)
    _assert_bit_identical(calculator, m, want, f"{name}_{tf}m")


def test_the_odd_history_flattens_whole_context_bars(
    matrices: dict[str, tuple[pd.DataFrame, np.ndarray]], context_oracle: Oracle
) -> None:
    """The flat run above is not vacuous: hour bars with no range and no change exist."""
    candles, _ = matrices["odd"]
    bars, _ = context_oracle(candles, 60)
    flat = (bars["high"] == bars["low"]) & (bars["close"].diff() == 0.0)
    assert flat.sum() >= 10


def test_the_default_catalog_leaves_no_context_call_to_talib(calculator: FeatureCalculator) -> None:
    lay = calculator.layout
    assert [calls for _, calls in lay.context] == [()] * len(TIMEFRAMES)
    assert not lay.context_talib
    native = {f"{n}_{tf}m" for tf in TIMEFRAMES for n in NAMES}
    catalog = {n for tf in TIMEFRAMES for call in context_calls(tf) for n, _ in call.outputs}
    assert native == catalog
    # the step writes them: their slots follow the custom outputs in cslots
    assert set(lay.cslots[len(lay.custom_names) :].tolist()) == {lay.slots[n] for n in native}


def test_which_context_calls_run_compiled_does_not_enter_the_feature_set_id() -> None:
    """The id hashes the catalog's calls, native or not: moving a call into the step keeps it (the
    outputs are the same bits), so stored features stay valid."""
    spec = FeatureSpec()

    def with_cci(tf: int) -> tuple[TalibCall, ...]:
        return (
            *context_calls(tf),
            TalibCall("CCI", ("high", "low", "close"), ((f"cci_14_{tf}m", 0),), {"timeperiod": 14}),
        )

    default = build_layout(spec)
    assert default.feature_set == FeatureCalculator(spec).feature_set
    assert build_layout(spec, context_catalog=context_calls).feature_set == default.feature_set
    assert build_layout(spec, context_catalog=with_cci).feature_set != default.feature_set


def test_a_catalog_context_call_that_does_not_match_its_replica_is_refused() -> None:
    def other_rsi(tf: int) -> tuple[TalibCall, ...]:
        calls = context_calls(tf)
        return (TalibCall("RSI", ("close",), ((f"rsi_14_{tf}m", 0),), {"timeperiod": 10}), *calls[1:])

    with pytest.raises(ValueError, match="native context indicator rsi_14_5m"):
        build_layout(FeatureSpec(), context_catalog=other_rsi)
