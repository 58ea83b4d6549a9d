"""The training set built instrument by instrument into arrays equals the pandas-merge build it
replaced (``reference_dataset``), array for array and in the same row order, whatever the instruments'
order, their missing labels or the label horizon cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_frames

from reference_dataset import assert_same_training_set, reference_training_set
from tickwise.core.dataset import (
    BarsBuilder,
    bars_of_frame,
    build_training_set,
    labels_by_instrument,
    training_set_of,
)
from tickwise.domain.errors import ModelError


def _messy_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three instruments in a shuffled order, NaN features, labels missing on one side for some bars,
    label rows in any order, and a features-only instrument."""
    features, labels = synthetic_frames(n_bars=600, n_instruments=3, seed=3)
    rng = np.random.default_rng(1)
    features.loc[rng.choice(len(features), 200, replace=False), "noise_1"] = np.nan
    features.loc[features.index[:30], "signal"] = np.nan  # a warm-up
    labels = labels.drop(index=rng.choice(labels.index, 150, replace=False))  # one side's label dropped
    labels = labels.sample(frac=1.0, random_state=2)  # any order
    extra = features[features["instrument_token"] == 1].assign(instrument_token=99)  # no labels at all
    features = pd.concat(
        [features[features["instrument_token"] != 2], extra, features[features["instrument_token"] == 2]]
    )
    return features.reset_index(drop=True), labels.reset_index(drop=True)


@pytest.mark.parametrize("cut", [None, "2026-01-05 08:00"])
def test_the_per_instrument_build_equals_the_pandas_merge_build(cut: str | None) -> None:
    features, labels = _messy_frames()
    end = None if cut is None else pd.Timestamp(cut, tz="UTC").to_pydatetime()
    names = ["noise_1", "signal", "noise_0"]  # a subset, in another order than the frame's
    expected = reference_training_set(
        features, labels, feature_set="fs", timeframe="1m", end=end, feature_names=names
    )
    got = build_training_set(features, labels, feature_set="fs", timeframe="1m", end=end, feature_names=names)
    assert_same_training_set(got, expected)
    bars = bars_of_frame(features, ["signal", "noise_0", "noise_1", "noise_2"])
    direct = training_set_of(
        bars, labels_by_instrument(labels), feature_set="fs", timeframe="1m", end=end, feature_names=names
    )
    assert_same_training_set(direct, expected)
    assert direct.bar_rows is not None
    assert np.array_equal(bars.token[direct.bar_rows], direct.token)
    assert np.array_equal(bars.times[direct.bar_rows], direct.t0.asi8)


def test_bars_are_sorted_by_time_then_instrument_and_keep_every_value() -> None:
    builder = BarsBuilder(["a", "b"])
    builder.add(7, np.array([10, 20, 30]), np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]]))
    builder.add(3, np.array([20, 40]), np.array([[7.0, 8.0], [9.0, 10.0]]))
    bars = builder.build()
    assert bars.token.tolist() == [7, 3, 7, 7, 3] and bars.times.tolist() == [10, 20, 20, 30, 40]
    assert np.array_equal(bars.take(), [[1, 2], [7, 8], [3, np.nan], [5, 6], [9, 10]], equal_nan=True)
    assert bars.nan_share("b") == 0.2 and bars.nan_share("a") == 0.0
    assert np.array_equal(bars.take(np.array([4, 0]), np.array([1])), [[10.0], [2.0]])
    frame = bars.frame(np.array([1, 3]), ["b"], timeframe="1m")
    assert list(frame.columns) == ["instrument_token", "timeframe", "time", "b"]
    assert frame.index.tolist() == [1, 3] and frame["b"].tolist() == [8.0, 6.0]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ModelError, match="feature values"):
        builder.add(1, np.array([1, 2]), np.zeros((3, 2)))


def test_no_bar_with_both_labels_is_a_clear_error() -> None:
    builder = BarsBuilder(["a"])
    builder.add(1, np.array([0]), np.zeros((1, 1)))
    bars = builder.build()
    labels = {
        1: pd.DataFrame(
            {
                "time": pd.to_datetime([0], utc=True),
                "t1": pd.to_datetime([5], utc=True),
                "side": [1],
                "label": [1],
                "ret": [0.1],
                "exit_price": [1.0],
                "weight": [1.0],
            }
        )
    }
    with pytest.raises(ModelError, match="both sides"):
        training_set_of(bars, labels, feature_set="fs", timeframe="1m")
    with pytest.raises(ModelError, match="empty"):
        training_set_of(bars, {}, feature_set="fs", timeframe="1m")
