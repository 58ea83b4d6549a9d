"""One compiled step for many instruments: the bank's rows are exactly the single-stream rows and the
batch rows, over many instruments closing minutes in interleaved subsets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from bank_support import live_bar, live_row, twin_banks

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.errors import DataValidationError


def test_many_instruments_with_interleaved_closes_equal_single_streams_and_batch(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # Histories of different lengths (one shorter than most TA-Lib lookbacks, so handles open late
    # and the warm-up mask is active), one with missing minutes (context bars close late).
    shapes = [(1_500, 0), (900, 0), (60, 0), (1_200, 13), (2_000, 0), (700, 7), (1_000, 0), (400, 0)]
    live = 160  # crosses many 5/15/60m context closes
    frames = {
        key: candle_factory(n + live, seed=40 + key, drop_every=drop) for key, (n, drop) in enumerate(shapes)
    }
    bank = FeatureBank(calculator.layout, capacity=2)  # grows while attaching: views re-pointed
    singles = {}
    for key, frame in frames.items():
        n = len(frame) - live
        bank.attach(key, calculator.open_stream(frame.iloc[:n].reset_index(drop=True)))
        singles[key] = calculator.open_stream(frame.iloc[:n].reset_index(drop=True))
    assert bank.capacity >= len(frames) > 2
    rng = np.random.default_rng(0)
    pos = dict.fromkeys(frames, 0)
    got: dict[int, list[np.ndarray]] = {k: [] for k in frames}
    want: dict[int, list[np.ndarray]] = {k: [] for k in frames}
    while any(p < live for p in pos.values()):
        # A random subset of the instruments closes this minute, in a random order.
        keys = [k for k in rng.permutation(list(frames)).tolist() if pos[k] < live and rng.random() < 0.7]
        bars = [frames[k].iloc[len(frames[k]) - live + pos[k]] for k in keys]
        rows, errors = bank.update_many(keys, bars)
        assert errors == [None] * len(keys)
        for j, (k, bar) in enumerate(zip(keys, bars, strict=True)):
            got[k].append(rows[j])
            want[k].append(singles[k].update(bar))
            pos[k] += 1
    for k, frame in frames.items():
        g, w = np.array(got[k]), np.array(want[k])
        differing = np.flatnonzero((g.view(np.int64) != w.view(np.int64)).any(axis=0))
        assert [calculator.names[i] for i in differing] == [], k
        batch = calculator.compute(frame)[calculator.names].to_numpy()[-live:]
        assert np.array_equal(g, batch, equal_nan=True), k


def test_a_refused_bar_leaves_its_stream_unchanged_and_the_others_are_stepped(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    bank = FeatureBank(calculator.layout)
    frames = {k: candle_factory(800, seed=k) for k in (1, 2)}
    for k, f in frames.items():
        bank.attach(k, calculator.open_stream(f.iloc[:-2].reset_index(drop=True)))
    bad = frames[1].iloc[-2].copy()
    bad["close"] = float("nan")
    rows, errors = bank.update_many([1, 2], [bad, frames[2].iloc[-2]])
    assert isinstance(errors[0], DataValidationError) and errors[1] is None
    assert np.isnan(rows[0]).all() and np.isfinite(rows[1]).any()
    rows, errors = bank.update_many([1], [frames[1].iloc[-2]])  # the stream took no harm
    want = calculator.compute(frames[1].iloc[:-1])[calculator.names].to_numpy()[-1]
    assert errors == [None] and np.array_equal(rows[0], want, equal_nan=True)


def test_two_bars_of_one_instrument_in_one_step_are_refused(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    bank = FeatureBank(calculator.layout)
    f = candle_factory(300, seed=3)
    bank.attach(9, calculator.open_stream(f.iloc[:-2].reset_index(drop=True)))
    with pytest.raises(ValueError, match="one bar per instrument"):
        bank.update_many([9, 9], [f.iloc[-2], f.iloc[-1]])


def test_the_vectorized_checks_refuse_the_bars_a_single_stream_refuses_with_the_same_message(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    frame = candle_factory(400, seed=5)
    good = frame.iloc[-1]
    cases: list[pd.Series] = []
    for column, value in (("close", float("nan")), ("low", float("inf")), ("close", -1.0), ("open", "x")):
        bar = good.copy()
        bar[column] = value
        cases.append(bar)
    stale = frame.iloc[-3].copy()  # not after the stream's last bar
    naive = good.copy()
    naive["time"] = pd.Timestamp("2026-01-05 09:15")  # no time zone
    cases += [stale, naive]
    keys = list(range(len(cases)))
    bank = FeatureBank(calculator.layout)
    singles = []
    for key in keys:
        bank.attach(key, calculator.open_stream(frame.iloc[:-1].reset_index(drop=True)))
        singles.append(calculator.open_stream(frame.iloc[:-1].reset_index(drop=True)))
    rows, errors = bank.update_many(keys, cases)
    assert np.isnan(rows).all()
    for single, bar, error in zip(singles, cases, errors, strict=True):
        with pytest.raises(DataValidationError) as refused:
            single.update(bar)
        assert isinstance(error, DataValidationError) and str(error) == str(refused.value)
    rows, errors = bank.update_many(keys, [good] * len(keys))  # every stream took no harm
    assert errors == [None] * len(keys)
    want = calculator.compute(frame)[calculator.names].to_numpy()[-1]
    assert all(np.array_equal(row, want, equal_nan=True) for row in rows)


def test_live_bars_read_as_arrays_step_exactly_as_the_same_bars_read_one_by_one(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    """The live path's Bars are read field by field across the minute; rows and refusals are those of
    the per-bar reader (a mapping per bar), bit for bit."""
    live = 30
    frames = {k: candle_factory(600 + live, seed=60 + k) for k in range(6)}
    arrays, one_by_one = twin_banks(calculator, frames, live)
    for minute in range(live):
        keys = list(frames)
        bars = [live_bar(k, live_row(frames, k, live, minute)) for k in keys]
        if minute == 5:  # a non-finite price and a repeated bar are refused in both
            bars[1] = live_bar(1, live_row(frames, 1, live, minute), close=float("nan"))
        if minute == 9:
            bars[2] = live_bar(2, live_row(frames, 2, live, minute - 2))
        mappings = [
            {f: getattr(b, f) for f in ("time", "open", "high", "low", "close", "volume", "obi_5")}
            for b in bars
        ]
        got, got_errors = arrays.update_many(keys, bars)
        want, want_errors = one_by_one.update_many(keys, mappings)
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), minute
        assert [str(e) for e in got_errors] == [str(e) for e in want_errors], minute
        assert (minute in (5, 9)) == any(e is not None for e in got_errors)
