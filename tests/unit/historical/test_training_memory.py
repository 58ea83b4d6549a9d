"""Training memory bounded by the rows in use (issue 15): the training matrix is gathered on demand
(``RowMatrix``), test rows are scored window by window, window weights come from arrays; every value is
the in-memory path's, bit for bit."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_frames

from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.core.dataset import BarsBuilder, RowMatrix, bars_of_frame, training_set_of
from tickwise.core.fitting import predict_rows, window_weights
from tickwise.core.sample_weights import fold_weights
from tickwise.domain.errors import ModelError
from tickwise.pipelines.historical.train import KEPT_LABEL_COLUMNS, compact_labels, labels_frame


def _bars(tmp_path: Path | None, seed: int = 0, parts: int = 4, k: int = 6):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    spill = None if tmp_path is None else ScratchRowSpill(tmp_path)
    builder = BarsBuilder([f"f{j}" for j in range(k)], *(() if spill is None else (spill.keep,)))
    whole = {}
    for token in range(1, parts + 1):
        n = int(rng.integers(50, 120))
        times = np.sort(rng.choice(np.arange(1_000), size=n, replace=False)).astype(np.int64) * 60 * 10**9
        x = rng.normal(size=(n, k))
        x[rng.random(size=x.shape) < 0.05] = np.nan
        builder.add(token, times, x)
        whole[token] = (times, x)
    bars = builder.build()
    # the reference: every bar's values in the bars' sorted order, in memory
    dense = np.concatenate([whole[t][1] for t in sorted(whole)])[bars.source]
    return bars, dense


@pytest.mark.parametrize("spilled", [False, True])
def test_a_row_matrix_gathers_the_values_of_the_in_memory_matrix_bit_for_bit(
    tmp_path: Path, spilled: bool
) -> None:
    bars, dense = _bars(tmp_path if spilled else None)
    rng = np.random.default_rng(1)
    bar_rows = np.sort(rng.choice(len(bars), size=len(bars) // 2, replace=False))
    cols = np.array([4, 0, 2])
    m = RowMatrix(bars, bar_rows, cols)
    expected = dense[np.ix_(bar_rows, cols)]
    rows = rng.permutation(len(bar_rows))[:40]
    assert m.shape == expected.shape and len(m) == len(expected)
    np.testing.assert_array_equal(np.asarray(m), expected)
    np.testing.assert_array_equal(m[np.ix_(rows, [2, 0])], expected[np.ix_(rows, [2, 0])])
    np.testing.assert_array_equal(m[rows], expected[rows])
    np.testing.assert_array_equal(m[rows, 1], expected[rows, 1])
    np.testing.assert_array_equal(m[rows, 1:], expected[rows, 1:])
    np.testing.assert_array_equal(m[5:17], expected[5:17])
    mask = rng.random(len(bar_rows)) < 0.3
    np.testing.assert_array_equal(m[mask], expected[mask])
    np.testing.assert_array_equal(np.asarray(m.subset(rows)), expected[rows])


def test_per_bar_columns_are_appended_as_an_hstack_of_the_rows_would_be(tmp_path: Path) -> None:
    bars, dense = _bars(tmp_path)
    bar_rows = np.arange(0, len(bars), 3)
    extra = np.random.default_rng(2).normal(size=(len(bars), 2))
    m = RowMatrix(bars, bar_rows, np.arange(3)).with_columns(extra)
    expected = np.hstack([dense[np.ix_(bar_rows, np.arange(3))], extra[bar_rows]])
    np.testing.assert_array_equal(np.asarray(m), expected)
    np.testing.assert_array_equal(m[np.ix_([4, 1], [4, 0, 3])], expected[np.ix_([4, 1], [4, 0, 3])])
    np.testing.assert_array_equal(m[[2, 7], 4], expected[[2, 7], 4])
    more = m.with_columns(extra[:, :1])
    assert more.shape == (len(bar_rows), 6)
    np.testing.assert_array_equal(np.asarray(more)[:, 5], extra[bar_rows, 0])


def test_a_row_matrix_refuses_columns_it_does_not_have_and_per_bar_columns_of_other_bars() -> None:
    bars, _ = _bars(None)
    m = RowMatrix(bars, np.arange(5), np.arange(3))
    with pytest.raises(IndexError):
        m[np.arange(2), 3]
    with pytest.raises(IndexError):
        m[1]
    with pytest.raises(ModelError, match="per-bar columns"):
        m.with_columns(np.zeros((len(bars) - 1, 1)))


def test_the_training_set_keeps_no_matrix_of_its_rows(tmp_path: Path) -> None:
    features, labels = synthetic_frames(n_bars=300, n_instruments=2, seed=3)
    with ScratchRowSpill(tmp_path) as spill:
        builder = BarsBuilder(["signal", "noise_0"], spill.keep)
        for token, part in features.groupby("instrument_token"):
            times = pd.DatetimeIndex(part["time"]).as_unit("ns").asi8
            builder.add(int(token), times, part[["signal", "noise_0"]].to_numpy())
        bars = builder.build()
        by_token = {int(t): g for t, g in labels.groupby("instrument_token")}
        ts = training_set_of(bars, by_token, feature_set="fs", timeframe="1m")
        assert isinstance(ts.x, RowMatrix)
        expected = features.set_index(["instrument_token", "time"]).loc[
            list(zip(ts.token.tolist(), ts.t0, strict=True)), ["signal", "noise_0"]
        ]
        np.testing.assert_array_equal(np.asarray(ts.x), expected.to_numpy())


def test_scoring_rows_window_by_window_equals_one_call_bit_for_bit() -> None:
    bars, dense = _bars(None, parts=3, k=5)
    from tickwise.core.dataset import TrainingSet

    n = len(bars)
    ts = TrainingSet.of_arrays(
        feature_names=[f"f{j}" for j in range(5)],
        feature_set="fs",
        timeframe="1m",
        x=RowMatrix(bars, np.arange(n), np.arange(5)),
        token=bars.token,
        t0=bars.time_index(),
        t1=bars.time_index(),
        labels={},
    )
    y = (np.nan_to_num(dense[:, 0]) > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5, "seed": 1},
        lgb.Dataset(dense, y),
        num_boost_round=8,
    )
    rows = np.random.default_rng(4).permutation(n)[: n - 3]
    cols = np.arange(5)
    whole = np.asarray(booster.predict(dense[rows]), dtype=np.float64)
    np.testing.assert_array_equal(predict_rows(booster, ts, rows, cols, window=7), whole)
    np.testing.assert_array_equal(predict_rows(booster, ts, rows, cols), whole)


@pytest.mark.parametrize("both_sides", [False, True])
def test_window_weights_equal_the_frame_fold_weights_bit_for_bit(both_sides: bool) -> None:
    _, labels = synthetic_frames(n_bars=400, n_instruments=3, seed=6)
    grid = pd.date_range("2026-01-05 03:45", periods=420, freq="1min", tz="UTC")
    rng = np.random.default_rng(7)
    closes = {
        (t, "1m"): pd.Series(100 + np.cumsum(rng.normal(scale=0.1, size=len(grid))), index=grid)
        for t in (1, 2, 3)
    }
    mine = labels if both_sides else labels[labels["side"] == 1]  # one group, or one per side
    long_ = mine.sort_values(["time", "instrument_token"]).reset_index(drop=True)
    rows = np.sort(rng.choice(len(long_), size=700, replace=False))
    frame = long_.iloc[rows]
    expected = fold_weights(frame, closes, frame["t1"].max()).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(window_weights(long_, rows, closes), expected)


def _stored_labels(token: int, n: int = 6) -> pd.DataFrame:
    """Label rows as the label repository reads them (13 columns, strings per row)."""
    times = pd.date_range("2026-01-05 03:45", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "instrument_token": np.full(2 * n, token, dtype=np.int64),
            "timeframe": ["1m"] * (2 * n),
            "time": times.repeat(2),
            "side": np.tile([-1, 1], n).astype(np.int64),
            "label": np.tile([1, -1, 0], 2 * n // 3 + 1)[: 2 * n].astype(np.int64),
            "t1": times.repeat(2) + pd.Timedelta(minutes=3),
            "t1_max": times.repeat(2) + pd.Timedelta(minutes=5),
            "ret": np.linspace(-0.01, 0.01, 2 * n),
            "exit_price": np.linspace(99.0, 101.0, 2 * n),
            "barrier": ["pt"] * (2 * n),
            "ambiguous": np.zeros(2 * n, dtype=bool),
            "weight": np.linspace(0.5, 1.5, 2 * n),
            "meta": pd.array([None] * (2 * n), dtype="Int64"),
        }
    )


def test_the_load_keeps_labels_compact_and_gives_the_stored_rows_back() -> None:
    stored = {7: _stored_labels(7), 9: _stored_labels(9, n=3)}
    kept = {t: compact_labels(f, t, "1m") for t, f in stored.items()}
    assert list(kept[7].columns) == ["time", "side", "label", "t1", "ret", "exit_price", "weight"]
    assert kept[7]["side"].dtype == np.int8 and kept[7]["label"].dtype == np.int8
    expected = pd.concat(stored.values(), ignore_index=True).loc[:, list(KEPT_LABEL_COLUMNS)]
    pd.testing.assert_frame_equal(labels_frame(kept, "1m"), expected)
    first_minute = labels_frame(kept, "1m", lambda lab: (lab["time"] == lab["time"].min()).to_numpy())
    pd.testing.assert_frame_equal(
        first_minute, expected[expected["time"] == expected["time"].min()].reset_index(drop=True)
    )
    assert list(labels_frame({}, "1m").columns) == list(KEPT_LABEL_COLUMNS)


def test_the_load_refuses_labels_of_another_instrument_or_values_that_are_not_labels() -> None:
    with pytest.raises(ModelError, match="another instrument or timeframe"):
        compact_labels(_stored_labels(7), 8, "1m")
    with pytest.raises(ModelError, match="another instrument or timeframe"):
        compact_labels(_stored_labels(7), 7, "5m")
    odd = _stored_labels(7)
    odd.loc[3, "label"] = 2
    with pytest.raises(ModelError, match="label values"):
        compact_labels(odd, 7, "1m")


def test_the_training_set_refuses_label_values_that_are_not_triple_barrier_labels() -> None:
    features, labels = synthetic_frames(n_bars=200, n_instruments=1, seed=8)
    bars = bars_of_frame(features, ["signal"])
    labels.loc[labels.index[5], "label"] = 3
    with pytest.raises(ModelError, match="labels outside"):
        training_set_of(bars, {1: labels}, feature_set="fs", timeframe="1m")
