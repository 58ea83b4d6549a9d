"""The compiled kernels' promises on a small, awkward history: a few sessions with gaps and odd bars.

These tests also run a second time with ``NUMBA_DISABLE_JIT=1`` in `make test` (the `interpreted`
marker): numba's machine code is invisible to coverage.py, and running the kernels' Python source under
the same assertions (equal to TA-Lib, live == batch, labels equal to the reference vectors) both
measures their coverage and proves the source relies on nothing numba-specific. The histories are small
because interpreted kernels are about a thousand times slower.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator, _inputs
from tickwise.core.features.engine import KernelParams
from tickwise.core.features.engine import batch as batch_run
from tickwise.core.features.ffd import ffd_batch, ffd_weights
from tickwise.core.features.kernels import NATIVE_CONTEXT, NATIVE_TALIB
from tickwise.core.features.talib_catalog import ONE_MINUTE, context_calls

pytestmark = pytest.mark.interpreted

_CALLS = {name: (call, idx) for call in ONE_MINUTE for name, idx in call.outputs}
N_BARS = 1_400
N_LIVE = 40


@pytest.fixture(scope="module")
def odd_history(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """~4 sessions with every 11th minute missing, flat bars, zero volume and a flat price run."""
    c = candle_factory(N_BARS, seed=41, drop_every=11)
    rng = np.random.default_rng(3)
    flat = rng.random(len(c)) < 0.1
    for col in ("open", "high", "low"):
        c.loc[flat, col] = c.loc[flat, "close"]
    c.loc[rng.random(len(c)) < 0.05, "volume"] = 0.0
    c.loc[600:640, ["open", "high", "low", "close"]] = 1.0
    return c.reset_index(drop=True)


@pytest.fixture(scope="module")
def batch(calculator: FeatureCalculator, odd_history: pd.DataFrame) -> pd.DataFrame:
    return calculator.compute(odd_history)


def test_every_native_indicator_equals_talib_on_a_small_odd_history(
    calculator: FeatureCalculator, odd_history: pd.DataFrame, batch: pd.DataFrame
) -> None:
    for name, _, _ in NATIVE_TALIB:
        call, idx = _CALLS[name]
        out = getattr(talib, call.func)(
            *[odd_history[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params
        )
        want = out[idx] if isinstance(out, tuple) else out
        warm = calculator.warmups[name]
        got = batch[name].to_numpy()
        assert np.array_equal(got[warm:], want[warm:], equal_nan=True), name


def test_every_context_indicator_equals_talib_on_the_context_bars_of_a_small_odd_history(
    calculator: FeatureCalculator,
    odd_history: pd.DataFrame,
    context_oracle: Callable[[pd.DataFrame, int], tuple[pd.DataFrame, np.ndarray]],
) -> None:
    lay = calculator.layout
    m = batch_run(lay, KernelParams.of(lay), _inputs(odd_history)).m  # the auxiliary levels too
    rows = np.arange(len(odd_history))
    for tf in calculator.spec.timeframes:
        bars, usable = context_oracle(odd_history, tf)
        last = np.searchsorted(usable, rows, side="right") - 1
        outputs = {name: (call, idx) for call in context_calls(tf) for name, idx in call.outputs}
        for base, _, _ in NATIVE_CONTEXT:
            name = f"{base}_{tf}m"
            call, idx = outputs[name]
            out = getattr(talib, call.func)(
                *[bars[i].to_numpy(dtype=np.float64) for i in call.inputs], **call.params
            )
            series = np.asarray(out[idx] if isinstance(out, tuple) else out)
            want = np.where(last >= 0, series[np.clip(last, 0, None)], np.nan)
            warm = calculator.warmups.get(name, 0)
            got = m[lay.slots[name]]
            assert np.array_equal(got[warm:], want[warm:], equal_nan=True), name
            assert np.isfinite(got[-1]), name


def test_the_stream_and_the_bank_give_the_batch_rows_bit_for_bit(
    calculator: FeatureCalculator, odd_history: pd.DataFrame, batch: pd.DataFrame
) -> None:
    names = list(calculator.layout.names)
    want = batch[names].to_numpy()[-N_LIVE:]
    head = odd_history.iloc[:-N_LIVE].reset_index(drop=True)
    tail = list(odd_history.iloc[-N_LIVE:].itertuples(index=False))

    stream = calculator.open_stream(head)
    alone = np.array([stream.update(bar) for bar in tail])
    assert np.array_equal(alone, want, equal_nan=True)

    bank = FeatureBank(calculator.layout, capacity=1)
    for key in (1, 2):
        bank.attach(key, calculator.open_stream(head))
    for i, bar in enumerate(tail):
        rows, errors = bank.update_many([1, 2], [bar, bar])
        assert errors == [None, None]
        assert np.array_equal(rows[0], want[i], equal_nan=True)
        assert np.array_equal(rows[1], want[i], equal_nan=True)


def test_fractional_differencing_equals_a_plain_convolution() -> None:
    rng = np.random.default_rng(5)
    logclose = np.cumsum(rng.normal(0, 1e-3, 600)) + 7.0
    weights = ffd_weights(0.4, 1e-4)
    out = np.full(logclose.shape, np.nan)
    ffd_batch(logclose, weights, out)
    width = len(weights)
    want = np.array(
        [weights @ logclose[i - width + 1 : i + 1][::-1] for i in range(width - 1, len(logclose))]
    )
    assert np.isnan(out[: width - 1]).all()
    np.testing.assert_allclose(out[width - 1 :], want, rtol=0, atol=1e-12)
