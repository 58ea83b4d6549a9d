"""Live == batch for the context timeframes now that their indicators run in the compiled step: across
session boundaries and late context bars, with bars refused at the minutes that close 5/15/60m bars;
and the TA-Lib handle machinery, kept for catalogs with calls that have no compiled replica, still
gives the batch rows through the stream and the bank."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.layout import build_layout
from tickwise.core.features.spec import FeatureSpec
from tickwise.core.features.talib_catalog import HLC, ONE_MINUTE, TalibCall, context_calls

Oracle = Callable[[pd.DataFrame, int], tuple[pd.DataFrame, np.ndarray]]


def _hour_closing_rows(candles: pd.DataFrame) -> np.ndarray:
    """Rows whose minute closes a 5, a 15 and a 60-minute bar (session minute 59, 119, ...)."""
    t = candles["time"].dt.tz_convert("Asia/Kolkata")
    since_open = (t.dt.hour * 60 + t.dt.minute - (9 * 60 + 15)).to_numpy()
    return np.flatnonzero(since_open % 60 == 59)


def test_bars_refused_at_context_closing_minutes_leave_the_bank_equal_to_batch(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    live = 800  # more than two sessions: session boundaries and the partial 15:15-15:30 hour bar
    frames = {k: candle_factory(2_000 + live, seed=70 + k, drop_every=(0, 29, 0)[k]) for k in range(3)}
    bank = FeatureBank(calculator.layout)
    for k, f in frames.items():
        bank.attach(k, calculator.open_stream(f.iloc[:-live].reset_index(drop=True)))
    closing = {k: set(_hour_closing_rows(f).tolist()) for k, f in frames.items()}
    refused = 0
    got: dict[int, list[np.ndarray]] = {k: [] for k in frames}
    for i in range(live):
        rows_now = {k: len(f) - live + i for k, f in frames.items()}
        # At the minutes that close context bars, instrument 0 first sends a bar with no close and
        # instrument 1 repeats its previous bar: both refused, then the right bars follow.
        bad = {k: r for k, r in rows_now.items() if r in closing[k] and k in (0, 1)}
        if bad:
            bars = []
            for k, r in bad.items():
                bar = frames[k].iloc[r].copy() if k == 0 else frames[k].iloc[r - 1].copy()
                if k == 0:
                    bar["close"] = float("nan")
                bars.append(bar)
            out, errors = bank.update_many(list(bad), bars)
            assert all(e is not None for e in errors) and np.isnan(out).all()
            refused += len(bad)
        keys = list(frames)
        out, errors = bank.update_many(keys, [frames[k].iloc[rows_now[k]] for k in keys])
        assert errors == [None] * len(keys)
        for j, k in enumerate(keys):
            got[k].append(out[j].copy())
    assert refused >= 10
    for k, f in frames.items():
        want = calculator.compute(f)[calculator.names].to_numpy()[-live:]
        g = np.array(got[k])
        differing = np.flatnonzero((g.view(np.int64) != want.view(np.int64)).any(axis=0))
        assert [calculator.names[i] for i in differing] == [], k


MIDPOINT = TalibCall("MIDPOINT", ("close",), (("midpoint_14", 0),), {"timeperiod": 14})


def _with_cci(tf: int) -> tuple[TalibCall, ...]:
    return (*context_calls(tf), TalibCall("CCI", HLC, ((f"cci_14_{tf}m", 0),), {"timeperiod": 14}))


@pytest.fixture(scope="module")
def custom() -> FeatureCalculator:
    """A catalog with a 1m and a context call that have no compiled replica: they run through TA-Lib
    (the Function API in batch, stream handles live), next to the compiled ones."""
    spec = FeatureSpec()
    return FeatureCalculator(
        spec, layout=build_layout(spec, one_minute=(*ONE_MINUTE, MIDPOINT), context_catalog=_with_cci)
    )


def test_a_custom_catalog_leaves_exactly_its_unreplicated_calls_to_talib(custom: FeatureCalculator) -> None:
    lay = custom.layout
    assert lay.talib_1m == (MIDPOINT,)
    assert [[c.func for c in calls] for _, calls in lay.context] == [["CCI"]] * 3
    assert lay.context_talib
    assert {"midpoint_14", "cci_14_5m", "cci_14_15m", "cci_14_60m", "rsi_14_60m"} <= set(custom.names)
    assert custom.feature_set != FeatureCalculator().feature_set


def test_a_custom_catalogs_talib_context_call_equals_talib_on_the_context_bars(
    custom: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame], context_oracle: Oracle
) -> None:
    candles = candle_factory(3_000, seed=12, drop_every=17)
    frame = custom.compute(candles)
    bars, usable = context_oracle(candles, 15)
    series = talib.CCI(*(bars[c].to_numpy(dtype=np.float64) for c in HLC), timeperiod=14)
    last = np.searchsorted(usable, np.arange(len(candles)), side="right") - 1
    want = np.where(last >= 0, series[np.clip(last, 0, None)], np.nan)
    warm = custom.warmups["cci_14_15m"]
    assert np.array_equal(frame["cci_14_15m"].to_numpy()[warm:], want[warm:])
    mid = talib.MIDPOINT(candles["close"].to_numpy(dtype=np.float64), timeperiod=14)
    assert np.array_equal(frame["midpoint_14"].to_numpy()[13:], mid[13:])


def test_the_talib_handles_of_a_custom_catalog_give_the_batch_rows_through_stream_and_bank(
    custom: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # Opened on 50 bars: every context handle is pending (too short), opens during the live bars,
    # and the warm-up mask (context values restored from the handles' copy) is active for 1,199 bars.
    candles = candle_factory(1_450, seed=21, drop_every=41)
    head = candles.iloc[:50].reset_index(drop=True)
    tail = candles.iloc[50:]
    want = custom.compute(candles)[custom.names].to_numpy()[50:]
    stream = custom.open_stream(head)
    assert stream.has_talib and stream.has_context_talib
    alone = np.array([stream.update(bar) for bar in tail.itertuples(index=False)])
    assert np.array_equal(alone, want, equal_nan=True)
    bank = FeatureBank(custom.layout)
    for key in (1, 2):
        bank.attach(key, custom.open_stream(head))
    for i, bar in enumerate(tail.itertuples(index=False)):
        rows, errors = bank.update_many([1, 2], [bar, bar])
        assert errors == [None, None]
        assert np.array_equal(rows, np.stack([want[i], want[i]]), equal_nan=True), i


def test_a_minute_that_closes_5_15_and_60_minute_bars_touches_no_stream_object(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    """With the default catalog the bank needs no per-instrument Python at a context close: with the
    stream objects gone from its rows (only their state arrays left), it still steps such minutes, and
    the rows are the batch rows."""
    frames = {k: candle_factory(1_700, seed=90 + k) for k in range(4)}
    live = 130  # from 10:25 of a session: crosses 11:14 and 12:14, which close 5, 15 and 60m bars
    bank = FeatureBank(calculator.layout)
    for k, f in frames.items():
        bank.attach(k, calculator.open_stream(f.iloc[:-live].reset_index(drop=True)))
    bank._streams = [None] * len(bank._streams)  # any per-stream call would now fail
    closes = 0
    got = []
    for i in range(live):
        rows = {k: len(f) - live + i for k, f in frames.items()}
        closes += rows[0] in set(_hour_closing_rows(frames[0]).tolist())
        out, errors = bank.update_many(list(frames), [f.iloc[rows[k]] for k, f in frames.items()])
        assert errors == [None] * len(frames)
        got.append(out.copy())
    assert closes >= 2
    for j, f in enumerate(frames.values()):
        want = calculator.compute(f)[calculator.names].to_numpy()[-live:]
        assert np.array_equal(np.array(got)[:, j], want, equal_nan=True)
