"""Feature names, warm-ups, the feature_set id, FFD weights and input validation."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.features.calculator import FeatureCalculator, FeatureSpec
from tickwise.core.features.ffd import ffd_weights
from tickwise.domain.errors import DataValidationError


def test_feature_set_has_at_least_85_unique_lower_case_names(calculator: FeatureCalculator) -> None:
    names = calculator.names
    assert len(names) >= 85
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    for expected in (
        "rsi_14",
        "atr_14",
        "ema_20",
        "macd_12_26_9",
        "macd_signal_12_26_9",
        "bb_upper_20_2",
        "obi_5",
    ):
        assert expected in names


def test_output_frame_has_time_and_one_float64_column_per_feature(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    assert list(features_20k.columns) == ["time", *calculator.names]
    assert len(features_20k) == len(candles_20k)
    assert (features_20k["time"].to_numpy() == candles_20k["time"].to_numpy()).all()
    assert all(features_20k[n].dtype == np.float64 for n in calculator.names)


def test_every_feature_is_nan_before_its_warmup_and_finite_after(
    calculator: FeatureCalculator, features_20k: pd.DataFrame
) -> None:
    late, early = [], []
    for name, warm in calculator.warmups.items():
        col = features_20k[name].to_numpy()
        if not np.isnan(col[:warm]).all():
            early.append(name)
        if not np.isfinite(col[warm:]).all():
            late.append(name)
    assert early == []
    assert late == []
    assert calculator.warmup == max(calculator.warmups.values())


def test_warmups_are_tight_for_one_minute_features(
    calculator: FeatureCalculator, features_20k: pd.DataFrame
) -> None:
    # A 1m feature's declared warm-up is the first row that has a value (no over-masking).
    for name in ("rsi_14", "ema_200", "macd_12_26_9", "ffd_40", "hurst_128", "ret_60", "zscore_close_60"):
        assert np.isfinite(features_20k[name].iloc[calculator.warmups[name]])


def test_obi_5_is_nan_when_the_input_column_is_absent(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    frame = calculator.compute(candle_factory(1_000, with_obi=False))
    assert frame["obi_5"].isna().all()
    assert frame["rsi_14"].iloc[100:].notna().all()


def test_feature_set_id_is_stable_and_follows_the_spec() -> None:
    a, b = FeatureCalculator(), FeatureCalculator(FeatureSpec())
    assert a.feature_set == b.feature_set
    assert re.fullmatch(r"fs\d+-[0-9a-f]{8}", a.feature_set)
    assert FeatureCalculator(FeatureSpec(ffd_tau=1e-3)).feature_set != a.feature_set
    assert FeatureSpec().to_dict()["ffd_d"] == 0.4


@pytest.mark.parametrize(("d", "tau", "length"), [(0.4, 1e-3, 55), (0.4, 1e-4, 282), (0.35, 1e-4, 332)])
def test_ffd_window_length_matches_the_labeling_spec(d: float, tau: float, length: int) -> None:
    assert len(ffd_weights(d, tau)) == length


def test_ffd_feature_is_the_weighted_sum_of_the_last_log_closes(
    calculator: FeatureCalculator, candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    w = ffd_weights(0.4, 1e-4)
    lc = np.log(candles_20k["close"].to_numpy())
    t = 5_000
    expected = float(np.dot(w, lc[t - np.arange(len(w))]))
    np.testing.assert_allclose(features_20k["ffd_40"].iloc[t], expected, rtol=1e-12)
    assert calculator.warmups["ffd_40"] == len(w) - 1


def test_vwap_restarts_at_each_session_open(candles_20k: pd.DataFrame, features_20k: pd.DataFrame) -> None:
    first = np.flatnonzero((candles_20k["time"].dt.strftime("%H:%M") == "09:15").to_numpy())[3]
    bar = candles_20k.iloc[first]
    assert features_20k["vwap"].iloc[first] == pytest.approx((bar.high + bar.low + bar.close) / 3, rel=1e-15)
    window = candles_20k.iloc[first : first + 30]
    tp = (window.high + window.low + window.close) / 3
    vwap = float((tp * window.volume).sum() / window.volume.sum())
    assert features_20k["vwap"].iloc[first + 29] == pytest.approx(vwap, rel=1e-12)


def test_hurst_of_a_random_walk_is_near_one_half(features_20k: pd.DataFrame) -> None:
    assert 0.4 < features_20k["hurst_128"].dropna().mean() < 0.6


def test_session_minute_counts_from_the_0915_open(
    candles_20k: pd.DataFrame, features_20k: pd.DataFrame
) -> None:
    assert features_20k["session_minute"].min() == 0
    assert features_20k["session_minute"].max() == 374


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["volume"]), "lack column"),
        (lambda f: f.assign(time=f["time"].dt.tz_localize(None)), "tz-aware"),
        (lambda f: f.iloc[::-1].reset_index(drop=True), "strictly increasing"),
        (lambda f: f.assign(close=f["close"].where(f.index != 7)), "non-finite"),
        (lambda f: f.assign(time=f["time"] + pd.Timedelta(seconds=5)), "whole minutes"),
    ],
)
def test_compute_rejects_bad_candles_with_a_clear_error(
    mutate: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
    calculator: FeatureCalculator,
    candle_factory,
) -> None:
    with pytest.raises(DataValidationError, match=message):
        calculator.compute(mutate(candle_factory(50)))


def test_compute_on_an_empty_frame_returns_an_empty_frame(
    calculator: FeatureCalculator, candle_factory
) -> None:
    frame = calculator.compute(candle_factory(10).iloc[:0])
    assert list(frame.columns) == ["time", *calculator.names]
    assert len(frame) == 0
