"""Purged walk-forward CV (labeling.md §10): no training label overlaps any test block, for every fold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.cv import PurgedWalkForward, holdout_split

MINUTE = pd.Timedelta(minutes=1)


def multi_instrument_events(seed: int, n_instruments: int = 3, n_bars: int = 300, horizon: int = 10):
    """Events of several instruments on one shared minute grid, shuffled; t1 = t0 + 1 … horizon bars."""
    rng = np.random.default_rng(seed)
    grid = pd.date_range("2025-01-06 09:15", periods=n_bars, freq="1min", tz="Asia/Kolkata")
    t0, t1 = [], []
    for _ in range(n_instruments):
        bars = np.sort(rng.choice(n_bars - horizon, size=rng.integers(20, n_bars - horizon), replace=False))
        t0.append(grid[bars])
        t1.append(grid[bars + rng.integers(1, horizon + 1, size=bars.size)])
    order = rng.permutation(sum(len(x) for x in t0))
    return (
        pd.DatetimeIndex(np.concatenate([x.asi8 for x in t0])[order]).tz_localize("UTC"),
        pd.DatetimeIndex(np.concatenate([x.asi8 for x in t1])[order]).tz_localize("UTC"),
    )


def leaks(t0: pd.DatetimeIndex, t1: pd.DatetimeIndex, train: np.ndarray, test: np.ndarray) -> int:
    """Training events whose [t0, t1] intersects the test block's label span [min t0, max t1]."""
    t_start, t_end = t0[test].min(), t1[test].max()
    return int(np.count_nonzero((t0[train] <= t_end) & (t1[train] >= t_start)))


def buggy_split(t0: pd.DatetimeIndex, t1: pd.DatetimeIndex, n_splits: int) -> Iterator[tuple]:
    """The 2020 mlfinlab bug: the test window starts at the *t1* of the first test event."""
    order = np.argsort(t0.asi8, kind="stable")
    for block in np.array_split(order, n_splits + 1)[1:]:
        first = block[np.argmin(t0.asi8[block])]
        start = t1[first]  # should be t0[first]
        yield np.flatnonzero(t1 < start), block


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_splits=st.integers(2, 6),
    expanding=st.booleans(),
    include_future=st.booleans(),
    embargo=st.one_of(st.integers(0, 15), st.integers(0, 20).map(lambda m: m * MINUTE)),
)
def test_no_training_label_intersects_any_test_block(
    seed: int, n_splits: int, expanding: bool, include_future: bool, embargo: int | pd.Timedelta
) -> None:
    t0, t1 = multi_instrument_events(seed)
    cv = PurgedWalkForward(
        n_splits,
        embargo=embargo,
        expanding=expanding,
        train_period=pd.Timedelta(minutes=90),
        include_future=include_future,
    )
    folds = list(cv.split(t0, t1))
    assert folds
    seen_test: list[np.ndarray] = []
    for train, test in folds:
        assert leaks(t0, t1, train, test) == 0
        assert np.intersect1d(train, test).size == 0
        t_start, t_end = t0[test].min(), t1[test].max()
        after = train[t0[train] > t_end]
        if not include_future:
            assert after.size == 0 and (t1[train] < t_start).all()
        elif isinstance(embargo, pd.Timedelta):
            assert (t0[after] > t_end + embargo).all()
        else:
            later_times = np.unique(t0[t0 > t_end])
            if embargo and later_times.size:
                assert (t0[after] > later_times[min(embargo, later_times.size) - 1]).all()
        # The test block is one contiguous range of t0 time: no other event falls inside it.
        inside = (t0 >= t_start) & (t0 <= t0[test].max())
        assert set(np.flatnonzero(inside)) == set(test)
        seen_test.append(test)
    # Events sharing a timestamp (several instruments) never straddle two blocks.
    blocks_of_time: dict[int, set[int]] = {}
    for k, test in enumerate(seen_test):
        for ts in t0.asi8[test]:
            blocks_of_time.setdefault(int(ts), set()).add(k)
    assert all(len(v) == 1 for v in blocks_of_time.values())


def test_the_property_catches_the_t1_start_bug() -> None:
    t0, t1 = multi_instrument_events(seed=5)
    assert sum(leaks(t0, t1, train, test) for train, test in buggy_split(t0, t1, 4)) > 0
    assert sum(leaks(t0, t1, train, test) for train, test in PurgedWalkForward(4).split(t0, t1)) == 0


def test_walk_forward_tests_every_block_after_the_first() -> None:
    t0 = np.arange(100)
    folds = list(PurgedWalkForward(4).split(t0, t0 + 3))
    assert len(folds) == 4
    assert np.concatenate([test for _, test in folds]).tolist() == list(range(20, 100))
    train, test = folds[0]
    assert train.tolist() == list(range(0, 17))  # events 17, 18, 19 end at or after T_start = 20: purged
    assert test.tolist() == list(range(20, 40))


def test_sliding_window_keeps_only_the_recent_training_period() -> None:
    t0 = pd.date_range("2025-01-06 09:15", periods=100, freq="1min", tz="Asia/Kolkata")
    cv = PurgedWalkForward(4, expanding=False, train_period=pd.Timedelta(minutes=30))
    for train, test in cv.split(t0, t0 + 2 * MINUTE):
        assert t0[train].min() >= t0[test].min() - pd.Timedelta(minutes=30)


def test_k_fold_variant_embargoes_events_after_the_block_in_bars() -> None:
    t0 = np.arange(100)
    folds = list(PurgedWalkForward(5, embargo=5, include_future=True).split(t0, t0 + 2))
    train, test = folds[1]  # test = 20 … 39, T_end = 41
    assert test.tolist() == list(range(20, 40))
    assert train.tolist() == list(range(0, 18)) + list(range(47, 100))


def test_folds_short_of_min_train_events_are_skipped() -> None:
    t0 = np.arange(100)
    folds = list(PurgedWalkForward(4, min_train_events=30).split(t0, t0))
    assert [len(test) for _, test in folds] == [20, 20, 20]


def test_too_few_distinct_times_for_the_blocks_is_an_error() -> None:
    with pytest.raises(ValueError, match="time blocks"):
        list(PurgedWalkForward(4).split(np.zeros(50, dtype=np.int64), np.ones(50, dtype=np.int64)))


def test_t1_before_t0_is_rejected() -> None:
    with pytest.raises(ValueError, match="t1 >= t0"):
        list(PurgedWalkForward(2).split(np.arange(10), np.arange(10) - 1))


def test_holdout_is_the_final_block_with_the_development_set_purged() -> None:
    t0, t1 = multi_instrument_events(seed=9)
    dev, test, start = holdout_split(t0, t1, fraction=0.2)
    assert (t0[test] >= start).all() and (t1[dev] < start).all()
    assert set(np.flatnonzero(t0 >= start)) == set(test)
    assert 0.15 < len(test) / len(t0) < 0.25
    # Cross-validation then runs on the development events only.
    for train, fold_test in PurgedWalkForward(3).split(t0[dev], t1[dev]):
        assert leaks(t0[dev], t1[dev], train, fold_test) == 0


# Purged CV reads its times the same way whatever container holds them: a tz-aware DatetimeIndex (the
# training set's t0/t1), a Series, datetime64 or Timestamp objects give the splits of their int64
# nanoseconds, which _as_ns passes through untouched (the oracle).
def containers(idx: pd.DatetimeIndex) -> dict[str, Any]:
    return {
        "DatetimeIndex (UTC)": idx,
        "DatetimeIndex (IST)": idx.tz_convert("Asia/Kolkata"),
        "Series": pd.Series(idx),
        "datetime64 array": idx.tz_convert(None).to_numpy(),
        "Timestamp objects": np.asarray(idx, dtype=object),
        "list of Timestamps": list(idx),
    }


@pytest.mark.parametrize("include_future", [False, True])
def test_splits_of_every_time_container_equal_the_splits_of_their_nanoseconds(include_future: bool) -> None:
    t0, t1 = multi_instrument_events(seed=11, n_instruments=4, n_bars=400)
    cv = PurgedWalkForward(n_splits=4, embargo=5, include_future=include_future)
    expected = list(cv.split(t0.asi8, t1.asi8))
    assert len(expected) == 4
    ends = containers(t1)
    for name, starts in containers(t0).items():
        got = list(cv.split(starts, ends[name]))
        assert len(got) == len(expected), name
        for (train, test), (want_train, want_test) in zip(got, expected, strict=True):
            assert np.array_equal(train, want_train), name
            assert np.array_equal(test, want_test), name


def test_holdout_of_a_datetime_index_equals_the_holdout_of_its_nanoseconds() -> None:
    t0, t1 = multi_instrument_events(seed=3)
    got, want = holdout_split(t0, t1, 0.25), holdout_split(t0.asi8, t1.asi8, 0.25)
    assert np.array_equal(got.dev_idx, want.dev_idx)
    assert np.array_equal(got.test_idx, want.test_idx)
    assert got.start == want.start


def test_a_missing_time_in_a_datetime_index_is_rejected() -> None:
    t0, t1 = multi_instrument_events(seed=5)
    with pytest.raises(ValueError, match="t0 contains missing times"):
        list(PurgedWalkForward(n_splits=2).split(t0.insert(0, pd.NaT), t1.insert(0, t1[0])))
