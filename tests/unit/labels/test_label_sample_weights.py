"""Sample weights (labeling.md §9): concurrency, uniqueness, return attribution, time decay, fold weights."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.labels import LabelSpec, label_events
from tickwise.core.sample_weights import (
    average_uniqueness,
    concurrency,
    event_weights,
    fold_weights,
    return_attribution,
    time_decay,
)


def test_concurrency_counts_both_interval_ends() -> None:
    assert concurrency([0, 1, 3], [2, 3, 3], 5).tolist() == [1, 2, 2, 2, 0]


def test_average_uniqueness_is_the_mean_inverse_concurrency_over_each_event() -> None:
    u = average_uniqueness([0, 1, 3], [2, 3, 3], 5)
    assert u == pytest.approx([(1 + 0.5 + 0.5) / 3, 0.5, 0.5])


@st.composite
def intervals(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n_bars = draw(st.integers(2, 60))
    t0 = np.array(draw(st.lists(st.integers(0, n_bars - 1), min_size=1, max_size=80)))
    length = np.array(draw(st.lists(st.integers(0, 12), min_size=len(t0), max_size=len(t0))))
    return t0, np.minimum(t0 + length, n_bars - 1), n_bars


@settings(max_examples=200, deadline=None)
@given(intervals())
def test_uniqueness_lies_in_zero_one_and_is_one_for_lone_events(ev: tuple) -> None:
    t0, t1, n_bars = ev
    u = average_uniqueness(t0, t1, n_bars)
    assert np.all(u > 0) and np.all(u <= 1 + 1e-12)
    c = concurrency(t0, t1, n_bars)
    lone = np.array([np.all(c[a : b + 1] == 1) for a, b in zip(t0, t1, strict=True)])
    assert np.allclose(u[lone], 1.0)


@settings(max_examples=200, deadline=None)
@given(intervals(), st.integers(0, 2**32 - 1))
def test_event_weights_sum_to_the_number_of_events(ev: tuple, seed: int) -> None:
    t0, t1, n_bars = ev
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n_bars)))
    w = event_weights(t0, t1, close)
    assert w.sum() == pytest.approx(len(t0))
    assert np.all(w >= 0)


def test_return_attribution_starts_after_the_entry_bar() -> None:
    close = np.array([100.0, 200.0, 200.0, 100.0])
    # Event A = [1, 2] sees only the flat 1→2 step; the 0→1 jump into its entry bar must not count.
    # Event B = [2, 3] sees the fall 2→3 alone.
    w = return_attribution([1, 2], [2, 3], close)
    assert w.tolist() == [0.0, 2.0]


def test_flat_prices_give_uniform_attribution() -> None:
    assert return_attribution([0, 1], [2, 3], np.full(5, 100.0)).tolist() == [1.0, 1.0]


def test_time_decay_of_one_changes_nothing() -> None:
    assert time_decay([3, 1, 2], [0.5, 1.0, 0.2], 1.0).tolist() == [1.0, 1.0, 1.0]


def test_positive_decay_keeps_about_c_for_the_oldest_and_one_for_the_newest() -> None:
    u = np.full(100, 1.0)
    w = time_decay(np.arange(100)[::-1], u, 0.5)  # t0 order reversed: index 99 is the oldest
    assert w[0] == pytest.approx(1.0)
    assert w[99] == pytest.approx(0.5 + 0.5 / 100)
    assert np.all(np.diff(w[::-1]) > 0)


def test_negative_decay_zeroes_the_oldest_fraction() -> None:
    w = time_decay(np.arange(100), np.ones(100), -0.3)
    assert np.all(w[:30] == 0.0) and np.all(w[30:] > 0.0)
    assert w[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [-1.0, 1.5])
def test_decay_outside_minus_one_to_one_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="decay"):
        time_decay([0], [1.0], bad)


def test_fold_weights_recompute_inside_the_fold_and_match_stored_weights_on_the_full_set(
    session_candles: Callable[..., pd.DataFrame],
) -> None:
    frames, bars = [], {}
    for token, seed in ((11, 1), (22, 2)):
        candles = session_candles(days=2, seed=seed)
        frame, _ = label_events(candles, LabelSpec(), 1, "1m", instrument_token=token)
        frames.append(frame)
        bars[(token, "1m")] = candles.set_index("time")["close"]
    labels = pd.concat(frames, ignore_index=True)

    everything = fold_weights(labels, bars, labels["t1"].max())
    assert np.allclose(everything.to_numpy(), labels["weight"].to_numpy())

    train_end = labels["t1"].sort_values().iloc[len(labels) // 2]
    w = fold_weights(labels, bars, train_end)
    in_fold = labels["t1"] <= train_end
    assert w[~in_fold].isna().all()
    assert w[in_fold].notna().all()
    assert w[in_fold].sum() == pytest.approx(in_fold.sum())
    decayed = fold_weights(labels, bars, train_end, decay=0.0)
    assert decayed[in_fold].sum() == pytest.approx(in_fold.sum())


def test_fold_weights_name_the_instrument_without_bars(session_candles: Callable[..., pd.DataFrame]) -> None:
    frame, _ = label_events(session_candles(days=1), LabelSpec(), 1, "1m", instrument_token=7)
    with pytest.raises(KeyError, match="instrument 7"):
        fold_weights(frame, {}, frame["t1"].max())
