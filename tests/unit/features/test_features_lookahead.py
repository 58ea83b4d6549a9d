"""No look-ahead: a row computed on data cut at that row equals the row computed on the whole series."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.features.calculator import FeatureCalculator


def _rows_at(candles: pd.DataFrame, clock: str, session: int) -> int:
    """Row of the 1m candle stamped ``clock`` (IST) in the ``session``-th session of the frame."""
    days = candles["time"].dt.normalize().unique()
    stamp = days[session] + pd.Timedelta(clock + ":00")
    (row,) = np.flatnonzero((candles["time"] == stamp).to_numpy())
    return int(row)


# Cuts right before, at and right after 5/15/60m bucket ends (60m buckets end 10:15, 11:15, ..., 15:30).
CUTS = [
    "09:15",
    "09:19",
    "09:20",
    "09:59",
    "10:00",
    "10:07",
    "10:14",
    "10:15",
    "11:15",
    "15:14",
    "15:15",
    "15:29",
]


@pytest.mark.parametrize("clock", CUTS)
def test_row_on_data_cut_at_that_row_equals_row_on_full_series(
    clock: str, calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    row = _rows_at(candles_20k, clock, session=10)
    cut = calculator.compute(candles_20k.iloc[: row + 1])
    want = features_20k.iloc[row][calculator.names].to_numpy(dtype=np.float64)
    got = cut.iloc[row][calculator.names].to_numpy(dtype=np.float64)
    differing = [
        n for n, a, b in zip(calculator.names, got, want, strict=True) if not np.array_equal(a, b, True)
    ]
    assert differing == []


def test_truncation_holds_on_data_with_missing_minutes(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    candles = candle_factory(5_000, seed=11, drop_every=15)
    full = calculator.compute(candles)[calculator.names].to_numpy()
    for row in (1_500, 1_513, 1_514, 2_999, 4_321):
        cut = calculator.compute(candles.iloc[: row + 1])[calculator.names].to_numpy()
        assert np.array_equal(cut[row], full[row], equal_nan=True)


def test_fifteen_minute_feature_at_1007_uses_the_0945_bar_only(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    """The 09:59 candle closes 09:45-10:00; until then the 09:30 bar is the last closed one."""
    session = 12
    rows = {c: _rows_at(candles_20k, c, session) for c in ("09:58", "09:59", "10:07", "10:13", "10:14")}
    t = candles_20k["time"]
    day = t.iloc[rows["09:58"]].normalize()
    since = (t - t.dt.normalize() - pd.Timedelta(hours=9, minutes=15)) // pd.Timedelta(minutes=1)
    bucket = t.dt.normalize() + pd.Timedelta(hours=9, minutes=15) + pd.to_timedelta((since // 15) * 15, "m")
    closes = candles_20k.groupby(bucket)["close"].last()
    rsi = pd.Series(talib.RSI(closes.to_numpy(), timeperiod=14), index=closes.index)
    at = lambda hhmm: rsi[day + pd.Timedelta(hhmm + ":00")]  # noqa: E731
    feat = features_20k["rsi_14_15m"]
    assert feat.iloc[rows["09:58"]] == at("09:30")
    assert feat.iloc[rows["09:59"]] == at("09:45")
    assert feat.iloc[rows["10:07"]] == at("09:45")
    assert feat.iloc[rows["10:13"]] == at("09:45")
    assert feat.iloc[rows["10:14"]] == at("10:00")


def test_last_sixty_minute_bar_of_a_session_is_the_partial_1515_bar(
    features_20k: pd.DataFrame, candles_20k: pd.DataFrame
) -> None:
    # 60m buckets: 09:15, 10:15, ..., 14:15, then 15:15-15:30 (15 candles). At 15:29 it closes, and the
    # previous 60m close is the 15:14 candle's close, exactly as for the 15m bar 15:15-15:30.
    row = _rows_at(candles_20k, "15:29", session=20)
    c = candles_20k["close"].to_numpy()
    prev = _rows_at(candles_20k, "15:14", session=20)
    expected = (c[row] / c[prev] - 1.0) * 100.0
    np.testing.assert_allclose(features_20k["roc_1_60m"].iloc[row], expected, rtol=1e-12)
    assert features_20k["roc_1_60m"].iloc[row] == features_20k["roc_1_15m"].iloc[row]
    # One candle earlier the 60m value still comes from the 14:15 bar.
    assert features_20k["roc_1_60m"].iloc[row - 1] != features_20k["roc_1_60m"].iloc[row]
