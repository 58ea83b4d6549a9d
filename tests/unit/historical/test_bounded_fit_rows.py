"""The train stage's per-row transients bounded (issue 15, seventh session): purged splits and the
holdout cut by time bounds and counts, a window's weights computed per instrument, a fit's labels
and weights read only for the rows it keeps. Every new path is checked bit for bit against the
whole-array code it replaces, kept here as small reference implementations (not in src)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_frames

import tickwise.core.cv as cv_module
from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.core.cv import (
    PurgedWalkForward,
    holdout_sorted,
    holdout_split,
    is_ascending,
    position_dtype,
    scan_sorted,
)
from tickwise.core.dataset import (
    ArrayColumn,
    Bars,
    BarsBuilder,
    KeptLabels,
    TrainingSet,
    bars_of_frame,
    labels_by_instrument,
    training_set_of,
)
from tickwise.core.fit_jobs import BoosterJob, JobRows
from tickwise.core.fitting import (
    TUNED_DEFAULTS,
    TrainConfig,
    _subsample,
    fold_splits,
    holdout_rows,
    side_job,
    subsample_positions,
    training_weights,
    window_weights_of,
)
from tickwise.core.model import lgb_params
from tickwise.core.sample_weights import fold_weights_of
from tickwise.pipelines.historical.train import compact_labels

NAMES = ["signal", "noise_0", "noise_1"]
_NAT = np.iinfo(np.int64).min


# ---------------------------------------------------------------- reference (the whole-array code)


def _reference_window_weights(ts: TrainingSet, side: int, rows: np.ndarray) -> np.ndarray:
    """``TrainingSet.window_weights`` as it was: every window row's token, t0 and t1 read at once."""
    token = ts.read("token", rows)
    t0, t1 = ts.read("t0", rows), ts.label(side, "t1", rows)
    known = t1 != _NAT
    if not known.any():
        return np.full(len(token), np.nan, dtype=np.float64)
    grids = {}
    for tok in pd.unique(token):
        close = ts.closes.get((int(tok), ts.timeframe))
        if close is not None:
            grids[int(tok)] = (pd.DatetimeIndex(close.index).as_unit("ns").asi8, close.to_numpy(np.float64))
    return fold_weights_of(token, t0, t1, grids, int(t1[known].max()))


def _reference_training_weights(ts: TrainingSet, side: int, rows: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    y = ts.y(side)[rows]
    if cfg.recompute_weights and ts.closes:
        w = _reference_window_weights(ts, side, rows)
        w = np.where(np.isfinite(w) & (w > 0), w, 1e-6)
    else:
        w = ts.stored_weight(side)[rows]
    if cfg.class_balance:
        pos, total = w[y == 1].sum(), w.sum()
        if 0 < pos < total:
            w = np.where(y == 1, w * (0.5 * total / pos), w * (0.5 * total / (total - pos)))
    out: np.ndarray = w
    return out


def _reference_side_job(
    ts: TrainingSet,
    side: int,
    rows: np.ndarray,
    cfg: TrainConfig,
    feature_idx: np.ndarray,
    num_boost_round: int | None = None,
) -> BoosterJob:
    """``core.fitting.side_job`` as it was before issue 15's seventh session."""
    rows = np.sort(rows)
    names = [ts.feature_names[i] for i in feature_idx]
    weights = _reference_training_weights(ts, side, rows, cfg)
    y = ts.y(side)
    full_params = lgb_params(TUNED_DEFAULTS, cfg.seed)
    if num_boost_round is not None:
        sub = _subsample(np.arange(len(rows)), cfg.max_train_rows, cfg.seed)
        r = rows[sub]
        return BoosterJob(
            JobRows(ts.x, r, feature_idx), y[r], weights[sub], names, full_params, num_boost_round
        )
    t0 = ts.read("t0", rows)
    t1 = ts.read("t1", rows)
    cut = np.sort(t0)[int(len(rows) * (1 - cfg.valid_fraction))]
    fit_pos = np.flatnonzero(t1 < cut)
    val_pos = np.flatnonzero(t0 >= cut)
    if len(fit_pos) < 100 or len(val_pos) < 50 or len(np.unique(y[rows[val_pos]])) < 2:
        return _reference_side_job(ts, side, rows, cfg, feature_idx, cfg.num_boost_round // 2 or 1)
    fit_pos = _subsample(fit_pos, cfg.max_train_rows, cfg.seed)
    val_pos = _subsample(val_pos, max(cfg.max_train_rows // 4, 1), cfg.seed)
    fr, vr = rows[fit_pos], rows[val_pos]
    return BoosterJob(
        JobRows(ts.x, fr, feature_idx),
        y[fr],
        weights[fit_pos],
        names,
        full_params,
        cfg.num_boost_round,
        valid=(JobRows(ts.x, vr, feature_idx), y[vr], weights[val_pos]),
        early_stopping_rounds=cfg.early_stopping_rounds,
    )


# ---------------------------------------------------------------- data


class _Events:
    """Sorted events in memory, as ``core.cv.SortedEvents``."""

    def __init__(self, t0: np.ndarray, t1: np.ndarray) -> None:
        self._t0, self._t1 = t0, t1

    def __len__(self) -> int:
        return len(self._t0)

    def t0(self, at: slice | np.ndarray) -> np.ndarray:
        out: np.ndarray = self._t0[at]
        return out

    def t1(self, at: slice | np.ndarray) -> np.ndarray:
        out: np.ndarray = self._t1[at]
        return out


def _sorted_events(n: int, seed: int, instruments: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events on a minute grid, several instruments sharing each t0 (ties), t0 ascending."""
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, max(n // instruments, 2), size=n))
    t0 = 1_700_000_000 * 10**9 + minutes.astype(np.int64) * 60 * 10**9
    t1 = t0 + rng.integers(0, 30, size=n).astype(np.int64) * 60 * 10**9
    return t0, t1


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Read everything a few dozen rows at a time, so the chunk boundaries are crossed."""
    monkeypatch.setattr(cv_module, "CHUNK", 37)
    yield 37


def _stored(labels: pd.DataFrame) -> dict[int, pd.DataFrame]:
    out = {}
    for token, frame in labels_by_instrument(labels).items():
        frame = frame.sort_values(["time", "side"], kind="mergesort").reset_index(drop=True)
        out[token] = frame.assign(side=frame["side"].astype(np.int64), label=frame["label"].astype(np.int64))
    return out


def _training_set(
    spill: ScratchRowSpill | None, n_bars: int = 700, seed: int = 11, instruments: int = 4
) -> TrainingSet:
    """A built training set (t0-sorted, a few missing weights and instrument 4 with a flat price), in
    memory or spilled."""
    features, labels = synthetic_frames(n_bars=n_bars, n_instruments=instruments, n_noise=2, seed=seed)
    labels.loc[labels.index[::13], "weight"] = np.nan
    end = pd.Timestamp(features["time"].max()) - pd.Timedelta(minutes=30)
    rng = np.random.default_rng(seed)
    closes = {
        (int(t), "1m"): pd.Series(
            np.full(n_bars, 50.0) if t == 4 else 100 + np.cumsum(rng.normal(scale=0.1, size=n_bars)),
            index=pd.DatetimeIndex(f["time"]),
        )
        for t, f in features.groupby("instrument_token")
    }
    bars = bars_of_frame(features, NAMES)
    stored = _stored(labels)
    if spill is None:
        return training_set_of(bars, stored, feature_set="fs", timeframe="1m", end=end, closes=closes)
    kept = {t: KeptLabels.of_frame(compact_labels(f, t, "1m"), spill.keep_column) for t, f in stored.items()}
    return training_set_of(
        bars, kept, feature_set="fs", timeframe="1m", end=end, closes=closes, keep=spill.keep_column
    )


def _same_job(got: BoosterJob, want: BoosterJob) -> None:
    assert np.array_equal(got.train.rows, want.train.rows)
    assert got.train.x is want.train.x and np.array_equal(got.train.cols, want.train.cols)
    assert got.y.dtype == want.y.dtype and got.y.tobytes() == want.y.tobytes()
    assert got.weight.dtype == want.weight.dtype and got.weight.tobytes() == want.weight.tobytes()
    assert got.names == want.names and got.params == want.params
    assert got.num_boost_round == want.num_boost_round
    assert got.early_stopping_rounds == want.early_stopping_rounds
    assert (got.valid is None) == (want.valid is None)
    if got.valid is not None and want.valid is not None:
        assert np.array_equal(got.valid[0].rows, want.valid[0].rows)
        assert got.valid[1].tobytes() == want.valid[1].tobytes()
        assert got.valid[2].tobytes() == want.valid[2].tobytes()


# ---------------------------------------------------------------- splits


@pytest.mark.parametrize("n", [40, 997, 5_000])
@pytest.mark.parametrize(
    "cv",
    [
        PurgedWalkForward(n_splits=4, embargo=10, min_train_events=1),
        PurgedWalkForward(n_splits=3, embargo=0, min_train_events=200),
        PurgedWalkForward(n_splits=2, expanding=False, train_period=pd.Timedelta(minutes=400)),
    ],
)
def test_a_sorted_split_gives_the_whole_array_split_s_positions(
    n: int, cv: PurgedWalkForward, small_chunks: int
) -> None:
    t0, t1 = _sorted_events(n, seed=n)
    events = _Events(t0, t1)
    assert scan_sorted(events)
    want = list(cv.split(t0, t1))
    got = list(cv.split_sorted(events))
    assert len(got) == len(want)
    for (train, test), (want_train, want_test) in zip(got, want, strict=True):
        assert train.dtype == np.int32
        assert np.array_equal(train, want_train)
        assert np.array_equal(np.arange(n)[test], want_test)


@pytest.mark.parametrize("n", [2, 41, 997, 5_000])
@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_a_sorted_holdout_gives_the_whole_array_holdout_s_positions(
    n: int, fraction: float, small_chunks: int
) -> None:
    t0, t1 = _sorted_events(n, seed=n + 1, instruments=1)
    try:
        want = holdout_split(t0, t1, fraction)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)[:20]):
            holdout_sorted(_Events(t0, t1), fraction)
        return
    got = holdout_sorted(_Events(t0, t1), fraction)
    assert np.array_equal(got.dev_idx, want.dev_idx) and np.array_equal(got.test_idx, want.test_idx)
    assert got.start == want.start


def test_too_few_times_to_cut_the_blocks_is_the_same_error_as_before() -> None:
    t0 = np.repeat(np.arange(3, dtype=np.int64) * 60 * 10**9, 5)
    cv = PurgedWalkForward(n_splits=4)
    with pytest.raises(ValueError, match="from 3 distinct t0 times"):
        list(cv.split(t0, t0))
    with pytest.raises(ValueError, match="from 3 distinct t0 times"):
        cv.split_sorted(_Events(t0, t0))  # raised when the blocks are cut, before any fold


def test_scanning_events_refuses_missing_or_backward_times_and_tells_unsorted_ones(small_chunks: int) -> None:
    t0, t1 = _sorted_events(200, seed=3)
    assert scan_sorted(_Events(t0, t1))
    assert not scan_sorted(_Events(t0[::-1].copy(), t1[::-1].copy()))
    swapped = t0.copy()
    swapped[[36, 37]] = swapped[[37, 36]] + np.array([0, 60 * 10**9])  # out of order across a chunk edge
    assert not scan_sorted(_Events(swapped, np.maximum(swapped, t1)))
    assert not scan_sorted(_Events(t0[:0], t1[:0]))
    missing = t1.copy()
    missing[150] = _NAT
    with pytest.raises(ValueError, match="t1 contains missing times"):
        scan_sorted(_Events(t0, missing))
    with pytest.raises(ValueError, match="t1 >= t0"):
        scan_sorted(_Events(t0, t0 - 1))
    assert is_ascending(np.arange(100)) and not is_ascending(np.array([1, 2, 1]))
    assert position_dtype(2**31 - 1) is np.int32 and position_dtype(2**31) is np.int64


@pytest.mark.parametrize("spilled", [False, True])
def test_a_training_set_s_folds_and_holdout_are_the_whole_column_ones(
    tmp_path: Path, spilled: bool, small_chunks: int
) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        ts = _training_set(spill if spilled else None)
        assert ts.t0_sorted
        want = holdout_split(ts.t0, ts.t1, fraction=0.2)
        got = holdout_rows(ts, 0.2)
        assert np.array_equal(got.dev_idx, want.dev_idx) and np.array_equal(got.test_idx, want.test_idx)
        rows = got.dev_idx
        cv = PurgedWalkForward(n_splits=4, embargo=10, min_train_events=200)
        folds = list(fold_splits(cv, ts, rows))
        reference = list(cv.split(ts.t0[rows], ts.t1[rows]))
        assert len(folds) == len(reference) > 0
        for (train, test), (want_train, want_test) in zip(folds, reference, strict=True):
            assert np.array_equal(rows[train], rows[want_train])
            assert np.array_equal(rows[test], rows[want_test])
        first, last = ts.time_range()
        assert first == ts.t0.min() and last == ts.t1.max()
        assert ts.tokens() == sorted(set(ts.token.tolist()))


def test_an_unsorted_training_set_falls_back_to_the_whole_column_split() -> None:
    ts = _training_set(None)
    shuffled = ts.subset(np.random.default_rng(1).permutation(len(ts)))
    assert not shuffled.t0_sorted
    cv = PurgedWalkForward(n_splits=3, min_train_events=1)
    rows = np.arange(len(shuffled))
    got = list(fold_splits(cv, shuffled, rows))
    want = list(cv.split(shuffled.t0, shuffled.t1))
    for (train, test), (want_train, want_test) in zip(got, want, strict=True):
        assert np.array_equal(train, want_train) and np.array_equal(test, want_test)
    split = holdout_rows(shuffled, 0.2)
    assert np.array_equal(split.dev_idx, holdout_split(shuffled.t0, shuffled.t1, 0.2).dev_idx)


# ---------------------------------------------------------------- weights and jobs


@pytest.mark.parametrize("n", [0, 1, 5, 29_999, 30_000, 30_001, 200_000, 2_000_000])
def test_a_subsample_drawn_from_the_count_is_the_one_drawn_from_the_positions(n: int) -> None:
    got = subsample_positions(n, 30_000, 7)
    want = _subsample(np.arange(n), 30_000, 7)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("spilled", [False, True])
def test_window_weights_per_instrument_equal_the_whole_window_ones_bit_for_bit(
    tmp_path: Path, spilled: bool, small_chunks: int
) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        ts = _training_set(spill if spilled else None)
        rng = np.random.default_rng(4)
        windows = [
            np.arange(len(ts)),
            np.arange(len(ts) // 3, len(ts), dtype=np.int32),
            np.sort(rng.choice(len(ts), size=300, replace=False)),
            rng.permutation(len(ts))[:500],  # any order: positions are per window row
        ]
        for rows in windows:
            for side in (1, -1):
                want = _reference_window_weights(ts, side, rows)
                assert ts.window_weights(side, rows).tobytes() == want.tobytes()
                for cfg in (
                    TrainConfig(),
                    TrainConfig(recompute_weights=False),
                    TrainConfig(class_balance=False),
                ):
                    want = _reference_training_weights(ts, side, rows, cfg)
                    assert training_weights(ts, side, rows, cfg).tobytes() == want.tobytes()
                    sub = np.sort(rng.choice(len(rows), size=min(len(rows), 50), replace=False))
                    assert window_weights_of(ts, side, rows, cfg).at(sub).tobytes() == want[sub].tobytes()


def test_window_weights_without_bars_of_an_instrument_are_an_error(tmp_path: Path) -> None:
    ts = _training_set(None)
    closes = {k: v for k, v in ts.closes.items() if k[0] != 2}
    from dataclasses import replace

    partial = replace(ts, closes=closes)
    with pytest.raises(KeyError, match="no bars given for instrument 2"):
        partial.window_weights(1, np.arange(len(ts)))


@pytest.mark.parametrize("spilled", [False, True])
@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(max_train_rows=400),
        TrainConfig(max_train_rows=100_000),
        TrainConfig(max_train_rows=400, class_balance=False, valid_fraction=0.3),
    ],
)
def test_a_side_job_is_the_whole_array_job_bit_for_bit(
    tmp_path: Path, spilled: bool, cfg: TrainConfig, small_chunks: int
) -> None:
    with ScratchRowSpill(tmp_path) as spill:
        ts = _training_set(spill if spilled else None)
        cols = np.array([0, 2])
        rng = np.random.default_rng(8)
        windows = [
            np.arange(len(ts), dtype=np.int32),
            np.sort(rng.choice(len(ts), size=len(ts) // 2, replace=False)),
            rng.permutation(len(ts))[: len(ts) // 3],  # unsorted: sorted first, as before
            np.arange(120),  # too short for a validation tail: half the rounds on all rows
        ]
        for rows in windows:
            for side in (1, -1):
                for rounds in (None, 37):
                    got = side_job(ts, side, rows, TUNED_DEFAULTS, cfg, cols, rounds)
                    want = _reference_side_job(ts, side, rows, cfg, cols, rounds)
                    _same_job(got, want)


def test_a_side_job_of_an_unsorted_training_set_is_the_whole_array_job() -> None:
    ts = _training_set(None)
    shuffled = ts.subset(np.random.default_rng(3).permutation(len(ts)))
    cfg = TrainConfig(max_train_rows=300)
    rows = np.arange(len(shuffled))
    for side in (1, -1):
        got = side_job(shuffled, side, rows, TUNED_DEFAULTS, cfg, np.array([0, 1]))
        _same_job(got, _reference_side_job(shuffled, side, rows, cfg, np.array([0, 1])))


def test_a_fixed_round_job_on_a_spilled_window_allocates_a_few_bytes_per_window_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What building the final fit's job allocates at its peak, per window row, with many instruments
    (each one's bar grid is a small part of the window) and reads of 8,192 rows: the window's labels
    and weights before the balance (9 bytes), each instrument's positions (4), the class sums' masks and
    positive weights. The whole-array code read every window row's token, t0 and t1 at once and made
    several float64 copies of its weights (this test fails on it)."""
    monkeypatch.setattr(cv_module, "CHUNK", 8_192)
    with ScratchRowSpill(tmp_path) as spill:
        ts = _training_set(spill, n_bars=6_000, seed=5, instruments=40)
        rows = np.arange(len(ts), dtype=np.int32)
        cfg = TrainConfig(max_train_rows=2_000)
        peaks = {}
        for name, build in (("new", side_job), ("old", None)):
            gc.collect()
            tracemalloc.start()
            if build is None:
                _reference_side_job(ts, 1, rows, cfg, np.array([0]), 50)
            else:
                side_job(ts, 1, rows, TUNED_DEFAULTS, cfg, np.array([0]), 50)
            peaks[name] = tracemalloc.get_traced_memory()[1] / len(rows)
            tracemalloc.stop()
    assert peaks["new"] < 24, peaks
    assert peaks["old"] > 2 * peaks["new"], peaks


# ---------------------------------------------------------------- the bars' keys


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("spilled", [False, True])
def test_bars_merged_window_by_window_have_the_keys_of_one_lexsort_bit_for_bit(
    tmp_path: Path, seed: int, spilled: bool, small_chunks: int
) -> None:
    """Instruments with overlapping, gappy times, one given twice and one empty: the windowed merge
    gives the keys ``np.lexsort((token, times))`` of all bars gave, ties in the order the parts came
    (the parts' times kept in memory or spilled as they arrive)."""
    rng = np.random.default_rng(seed)
    spill = ScratchRowSpill(tmp_path)
    builder = BarsBuilder(["a"], keep_column=spill.keep_column) if spilled else BarsBuilder(["a"])
    given: list[tuple[int, np.ndarray]] = []
    for token in (30, 10, 20, 10, 40):
        n = 0 if token == 40 else int(rng.integers(50, 400))
        times = np.sort(rng.choice(2_000, size=n, replace=False)).astype(np.int64) * 60 * 10**9
        builder.add(token, times, rng.normal(size=(n, 1)))
        given.append((token, times))
    bars = builder.build()
    token = np.concatenate([np.full(len(t), tok, dtype=np.int64) for tok, t in given])
    times = np.concatenate([t for _, t in given])
    order = np.lexsort((token, times))
    assert bars.token.tobytes() == token[order].tobytes()
    assert bars.times.tobytes() == times[order].tobytes()
    assert bars.source.tobytes() == order.astype(np.int64).tobytes()
    empty = BarsBuilder(["a"]).build()
    assert len(empty) == 0 and empty.times.dtype == np.int64
    spill.close()


def _reference_training_columns(
    bars: Bars, labels: dict[int, pd.DataFrame], end: pd.Timestamp | None
) -> dict[str, np.ndarray]:
    """``training_set_of``'s columns as it built them before: every bar's token argsorted, every row's
    positions concatenated and argsorted, each column concatenated and reordered."""
    end_ns = None if end is None else end.as_unit("ns").value
    bar_token = bars.token
    by_token = np.argsort(bar_token, kind="stable")
    cuts = np.flatnonzero(np.diff(bar_token[by_token])) + 1
    rows_of = {int(bar_token[idx[0]]): idx for idx in np.split(by_token, cuts) if len(idx)}
    picked, sources, t1_parts = [], [], []
    for instrument, given in labels.items():
        rows = rows_of.get(int(instrument))
        if rows is None or len(given) == 0:
            continue
        lab = KeptLabels.of_frame(given)
        lab_t0, lab_t1 = lab.read("time"), lab.read("t1")
        kept = np.ones(len(lab), dtype=bool) if end_ns is None else lab_t1 <= end_ns
        side = lab.read("side")
        long_, short = np.flatnonzero(kept & (side == 1)), np.flatnonzero(kept & (side == -1))
        both, at_l, at_s = np.intersect1d(lab_t0[long_], lab_t0[short], return_indices=True)
        _, at_bar, at_both = np.intersect1d(bars.key("times", rows), both, return_indices=True)
        long_, short = long_[at_l[at_both]], short[at_s[at_both]]
        picked.append(rows[at_bar])
        t1_parts.append(np.maximum(lab_t1[long_], lab_t1[short]))
        sources.append((lab, {1: long_, -1: short}))
    rows = np.concatenate(picked)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    columns = {
        "token": bars.key("token", rows),
        "t0": bars.key("times", rows),
        "t1": np.concatenate(t1_parts)[order],
    }
    dtypes = {
        "label": np.int8,
        "t1": np.int64,
        "ret": np.float64,
        "exit_price": np.float64,
        "weight": np.float64,
    }
    for s in (1, -1):
        for name, dtype in dtypes.items():
            values = np.concatenate([lab.read(name, at[s]) for lab, at in sources])[order]
            columns[f"{s}:{name}"] = np.asarray(values, dtype=dtype)
    columns["bar_rows"] = rows
    return columns


@pytest.mark.parametrize("spilled", [False, True])
@pytest.mark.parametrize("cut", [None, 100])
def test_a_training_set_built_in_place_has_the_columns_of_the_reordered_build_bit_for_bit(
    tmp_path: Path, spilled: bool, cut: int | None, small_chunks: int
) -> None:
    features, labels = synthetic_frames(n_bars=400, n_instruments=5, n_noise=2, seed=21)
    labels = labels[~((labels["instrument_token"] == 2) & (labels["side"] == -1) & (labels.index % 3 == 0))]
    labels = labels[labels["instrument_token"] != 5]  # bars without labels
    features = features[features["instrument_token"] != 4]  # labels without bars
    end = None if cut is None else pd.Timestamp(features["time"].max()) - pd.Timedelta(minutes=cut)
    bars = bars_of_frame(features, NAMES)
    stored = _stored(labels)
    want = _reference_training_columns(bars, stored, end)
    with ScratchRowSpill(tmp_path) as spill:
        given: dict[int, pd.DataFrame] | dict[int, KeptLabels] = stored
        if spilled:
            given = {
                t: KeptLabels.of_frame(compact_labels(f, t, "1m"), spill.keep_column)
                for t, f in stored.items()
            }
        ts = training_set_of(
            bars,
            given,
            feature_set="fs",
            timeframe="1m",
            end=None if end is None else end.to_pydatetime(),
            keep=spill.keep_column if spilled else ArrayColumn,
        )
        assert list(ts.columns) == list(want)
        for name, values in want.items():
            got = ts.read(name)
            assert got.tobytes() == values.tobytes(), name
            assert got.dtype == values.dtype, name
