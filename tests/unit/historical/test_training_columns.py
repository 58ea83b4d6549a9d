"""A training set's keys and labels kept out of core (issue 15): each per-row array is a kept column,
in memory or spilled to the run's scratch directory and read through a short-lived memmap; every value
read is the in-memory one, bit for bit, and a spilled training set holds no array of its rows."""

from __future__ import annotations

import gc
import pickle
import tracemalloc
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_frames

from tickwise.adapters.local.row_spill import FileColumn, ScratchRowSpill
from tickwise.core.dataset import (
    ArrayColumn,
    KeptCloses,
    KeptLabels,
    TrainingSet,
    bars_of_frame,
    close_grid,
    labels_by_instrument,
    training_set_of,
)
from tickwise.core.fitting import window_weights
from tickwise.domain.errors import ModelError
from tickwise.pipelines.historical.train import compact_labels

NAMES = ["signal", "noise_0", "noise_1"]


def _column_values(dtype: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    if dtype == "float64":
        values = rng.normal(size=n)
        values[::7] = np.nan
        values[1] = -0.0
        return values
    if dtype == "int8":
        return rng.integers(-1, 2, size=n).astype(np.int8)
    values = rng.integers(-(2**62), 2**62, size=n, dtype=np.int64)
    values[::5] = np.iinfo(np.int64).min  # NaT
    return values


@pytest.mark.parametrize("dtype", ["int8", "int64", "float64"])
@pytest.mark.parametrize("spilled", [False, True])
def test_a_kept_column_reads_the_values_of_the_in_memory_array_bit_for_bit(
    tmp_path: Path, dtype: str, spilled: bool
) -> None:
    values = _column_values(dtype, 1_000)
    with ScratchRowSpill(tmp_path) as spill:
        column = spill.keep_column(values) if spilled else ArrayColumn(values.copy())
        rng = np.random.default_rng(4)
        rows = rng.integers(0, len(values), size=300)  # unsorted, repeated
        mask = rng.random(len(values)) < 0.3
        assert len(column) == len(values)
        for key in (slice(None), slice(17, 503), rows, mask, np.empty(0, dtype=np.int64)):
            got = column.read(key)
            assert got.dtype == values.dtype and got.tobytes() == values[key].tobytes()


def test_a_spilled_column_s_file_goes_with_the_column_and_bad_input_is_refused(tmp_path: Path) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        column = spill.keep_column(np.arange(10, dtype=np.int64))
        assert isinstance(column, FileColumn) and column.path.exists()
        path = column.path
        del column
        gc.collect()
        assert not path.exists()  # a training set's columns do not pile up on the scratch disk
        empty = spill.keep_column(np.empty(0, dtype=np.float64))
        assert len(empty) == 0 and empty.read().dtype == np.float64
        with pytest.raises(ValueError, match="one dimension"):
            spill.keep_column(np.zeros((2, 2)))
        with pytest.raises(ValueError, match="numbers"):
            spill.keep_column(np.array(["1m", "5m"], dtype=object))


def _stored(labels: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Each instrument's label rows as the label repository reads them (time, then side)."""
    out = {}
    for token, frame in labels_by_instrument(labels).items():
        frame = frame.sort_values(["time", "side"], kind="mergesort").reset_index(drop=True)
        out[token] = frame.assign(side=frame["side"].astype(np.int64), label=frame["label"].astype(np.int64))
    return out


def _training_sets(tmp_path: Path, spill: ScratchRowSpill) -> tuple[TrainingSet, TrainingSet]:
    """The same training set built in memory from frames, and spilled from kept labels."""
    features, labels = synthetic_frames(n_bars=900, n_instruments=3, seed=11)
    labels.loc[labels.index[::13], "weight"] = np.nan
    end = pd.Timestamp(features["time"].max()) - pd.Timedelta(minutes=30)
    closes = {
        (t, "1m"): pd.Series(np.linspace(100, 101, 900), index=pd.DatetimeIndex(f["time"]))
        for t, f in features.groupby("instrument_token")
    }
    bars = bars_of_frame(features, NAMES)
    stored = _stored(labels)
    memory = training_set_of(bars, stored, feature_set="fs", timeframe="1m", end=end, closes=closes)
    kept = {t: KeptLabels.of_frame(compact_labels(f, t, "1m"), spill.keep_column) for t, f in stored.items()}
    spilled = training_set_of(
        bars, kept, feature_set="fs", timeframe="1m", end=end, closes=closes, keep=spill.keep_column
    )
    return memory, spilled


def test_a_spilled_training_set_holds_the_values_of_the_in_memory_one_bit_for_bit(tmp_path: Path) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        memory, spilled = _training_sets(tmp_path, spill)
        assert sorted(spilled.columns) == sorted(memory.columns)
        assert all(isinstance(c, FileColumn) for c in spilled.columns.values())
        for name, column in memory.columns.items():
            want, got = column.read(), spilled.read(name)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), name
        assert np.asarray(spilled.x).tobytes() == np.asarray(memory.x).tobytes()
        pd.testing.assert_index_equal(spilled.t0, memory.t0)
        pd.testing.assert_index_equal(spilled.t1, memory.t1)
        for side in (1, -1):
            pd.testing.assert_frame_equal(spilled.labels[side], memory.labels[side])
            assert spilled.y(side).tobytes() == memory.y(side).tobytes()
            assert spilled.stored_weight(side).tobytes() == memory.stored_weight(side).tobytes()
        rows = np.sort(np.random.default_rng(2).choice(len(memory), size=len(memory) // 3, replace=False))
        got_outcomes, want_outcomes = spilled.outcomes(rows), memory.outcomes(rows)
        for name in (f.name for f in fields(want_outcomes)):
            got, want = getattr(got_outcomes, name), getattr(want_outcomes, name)
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), name
        sub = spilled.subset(rows)
        assert sub.read("t0").tobytes() == memory.read("t0", rows).tobytes()
        assert np.asarray(sub.x).tobytes() == np.asarray(memory.x)[rows].tobytes()


@pytest.mark.parametrize("spilled", [False, True])
def test_window_weights_of_the_kept_columns_equal_the_frame_window_weights_bit_for_bit(
    tmp_path: Path, spilled: bool
) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        memory, on_disk = _training_sets(tmp_path, spill)
        ts = on_disk if spilled else memory
        rng = np.random.default_rng(9)
        for rows in (np.arange(len(ts)), np.sort(rng.choice(len(ts), size=500, replace=False))):
            for side in (1, -1):
                expected = window_weights(memory.labels[side], rows, memory.closes)
                assert ts.window_weights(side, rows).tobytes() == expected.tobytes()


def test_kept_labels_give_an_instrument_s_compact_rows_back(tmp_path: Path) -> None:
    _, labels = synthetic_frames(n_bars=50, n_instruments=1, seed=2)
    stored = _stored(labels)[1]
    compact = compact_labels(stored, 1, "1m")
    with ScratchRowSpill(tmp_path) as spill:
        kept = KeptLabels.of_frame(compact, spill.keep_column)
        assert len(kept) == len(compact)
        pd.testing.assert_frame_equal(kept.frame(), compact)
        pd.testing.assert_frame_equal(kept.frame(np.arange(3, 9)), compact.iloc[3:9].reset_index(drop=True))
    with pytest.raises(ModelError, match="without the columns"):
        KeptLabels({"time": ArrayColumn(np.zeros(1, dtype=np.int64))})


def test_a_spilled_training_set_holds_no_array_of_its_rows_in_memory(tmp_path: Path) -> None:
    """What a training set adds to the resident heap once built: the in-memory one holds its keys
    and both sides' labels (about 100 bytes a row), the spilled one a few kilobytes whatever its size."""
    features, labels = synthetic_frames(n_bars=20_000, n_instruments=3, n_noise=1, seed=5)
    bars = bars_of_frame(features, ["signal", "noise_0"])
    stored = _stored(labels)
    del features, labels
    with ScratchRowSpill(tmp_path) as spill:
        kept = {
            t: KeptLabels.of_frame(compact_labels(f, t, "1m"), spill.keep_column) for t, f in stored.items()
        }
        held = {}
        for name, given, keep in (
            ("memory", stored, ArrayColumn),
            ("spilled", kept, spill.keep_column),
        ):
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            ts = training_set_of(bars, given, feature_set="fs", timeframe="1m", keep=keep)  # type: ignore[arg-type]
            gc.collect()
            held[name] = (tracemalloc.get_traced_memory()[0] - before) / len(ts)
            tracemalloc.stop()
            del ts
    assert held["memory"] > 80, held
    assert held["spilled"] < 1, held


@pytest.mark.parametrize("spilled", [False, True])
def test_kept_closes_give_each_instrument_s_series_back_bit_for_bit(tmp_path: Path, spilled: bool) -> None:
    grid = pd.date_range("2026-01-05 03:45", periods=400, freq="1min", tz="UTC", name="time")
    rng = np.random.default_rng(8)
    given = {(t, "1m"): pd.Series(100 + np.cumsum(rng.normal(size=len(grid))), index=grid) for t in (3, 5)}
    given[(3, "1m")].iloc[7] = np.nan
    with ScratchRowSpill(tmp_path) as spill:
        closes = KeptCloses(spill.keep_column if spilled else ArrayColumn)
        for key, series in given.items():
            closes.add(key, series)
        assert list(closes) == list(given) and len(closes) == 2 and (9, "1m") not in closes
        for key, series in given.items():
            pd.testing.assert_series_equal(closes[key], series, check_freq=False)  # a read has none
            assert closes[key].to_numpy().tobytes() == series.to_numpy().tobytes()
        with pytest.raises(KeyError):
            closes[(9, "1m")]
        for store in (closes, given):  # kept columns as they are, and a plain mapping of Series
            for key, series in given.items():
                grid = close_grid(store, key)
                assert grid is not None
                assert grid[0].tobytes() == series.index.as_unit("ns").asi8.tobytes()
                assert grid[1].tobytes() == series.to_numpy(dtype=np.float64).tobytes()
            assert close_grid(store, (9, "1m")) is None


def test_a_spilled_column_pickled_for_a_worker_reads_the_same_file_and_leaves_it_to_its_owner(
    tmp_path: Path,
) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        column = spill.keep_column(np.arange(50, dtype=np.int64))
        copy = pickle.loads(pickle.dumps(column))
        assert copy.read(np.array([3, 1])).tolist() == [3, 1] and len(copy) == 50
        del copy
        gc.collect()
        assert column.path.exists()  # the copy going removes nothing
