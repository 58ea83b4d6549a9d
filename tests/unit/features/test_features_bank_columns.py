"""The bank's columns input (:meth:`FeatureBank.update_columns`, the live minute from the candle
builder's columns) steps exactly as the same bars given as objects: rows, refusals and state, bit for bit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from bank_support import live_bar, live_row, twin_banks

from tickwise.core.candles import ClosedBars
from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.stream import epoch_minute


def _state(bank: FeatureBank) -> list[bytes]:
    return [a.tobytes() for a in (bank.ist, bank.fst, bank.ring, bank.col, bank.fin_bars, bank.fin_count)]


def test_bars_given_as_columns_or_by_bank_row_step_exactly_as_the_same_bars_given_as_objects(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    live = 20
    frames = {k: candle_factory(600 + live, seed=80 + k) for k in range(5)}
    columns, objects = twin_banks(calculator, frames, live)
    by_row, _ = twin_banks(calculator, frames, live)
    for minute in range(live):
        keys = list(frames)[:: 1 if minute % 2 else -1]
        bars = [live_bar(k, live_row(frames, k, live, minute)) for k in keys]
        if minute == 4:  # a non-finite price and a bar not after its stream's last are refused in both
            bars[1] = live_bar(keys[1], live_row(frames, keys[1], live, minute), close=np.nan)
        if minute == 7:
            bars[2] = live_bar(keys[2], live_row(frames, keys[2], live, minute - 2))
        block = ClosedBars.of(bars)
        t_min = np.array([epoch_minute(t) for t in block.times], dtype=np.int64)
        got, got_errors = columns.update_columns(block.tokens, block.times, t_min, block.values)
        want, want_errors = objects.update_many(keys, bars)
        rows = np.array([by_row.row(k) for k in block.tokens], dtype=np.int64)
        got_by_row, by_row_errors = by_row.update_rows(rows, block.times, t_min, block.values)
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), minute
        assert got_by_row.tobytes() == want.tobytes(), minute
        assert [str(e) for e in got_errors] == [str(e) for e in want_errors], minute
        assert [str(e) for e in by_row_errors] == [str(e) for e in want_errors], minute
        assert (minute in (4, 7)) == any(e is not None for e in got_errors)
    assert _state(columns) == _state(objects) == _state(by_row)


def test_columns_of_the_wrong_shape_or_with_a_repeated_key_are_refused(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    bank = FeatureBank(calculator.layout)
    f = candle_factory(300, seed=4)
    bank.attach(1, calculator.open_stream(f.iloc[:-1].reset_index(drop=True)))
    bank.attach(2, calculator.open_stream(f.iloc[:-1].reset_index(drop=True)))
    t = [pd.Timestamp(f["time"].iloc[-1]).to_pydatetime()] * 2
    t_min = np.array([epoch_minute(x) for x in t], dtype=np.int64)
    with pytest.raises(ValueError, match="one bar per instrument"):
        bank.update_columns([1, 1], t, t_min, np.ones((2, 6)))
    with pytest.raises(ValueError, match="2 keys need 2"):
        bank.update_columns([1, 2], t, t_min, np.ones((2, 5)))


def test_the_bank_holds_a_minute_only_when_every_key_has_that_very_stream(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    bank = FeatureBank(calculator.layout)
    f = candle_factory(300, seed=6)
    a, b = (calculator.open_stream(f.reset_index(drop=True)) for _ in range(2))
    bank.attach(1, a)
    bank.attach(2, b)
    assert bank.holds([1, 2], [a, b])
    assert not bank.holds([1, 2], [b, a])  # another stream than the bank's row
    assert not bank.holds([1, 3], [a, b])  # a key without a row
    assert not bank.holds([1, 2], [a, None])
    assert not bank.holds([1, 2], [a])
    bank.attach(2, a.copy())  # a re-opened stream takes the row over
    assert not bank.holds([1, 2], [a, b])


def test_rows_the_bank_did_not_give_or_a_row_twice_are_refused(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    bank = FeatureBank(calculator.layout)
    f = candle_factory(300, seed=5)
    for key in (7, 8):
        bank.attach(key, calculator.open_stream(f.iloc[:-1].reset_index(drop=True)))
    assert (bank.row(7), bank.row(8), bank.row(9)) == (0, 1, None)
    t = [pd.Timestamp(f["time"].iloc[-1]).to_pydatetime()] * 2
    t_min = np.array([epoch_minute(x) for x in t], dtype=np.int64)
    with pytest.raises(ValueError, match="one bar per instrument"):
        bank.update_rows(np.array([1, 1]), t, t_min, np.ones((2, 6)))
    with pytest.raises(ValueError, match="rows the bank has given"):
        bank.update_rows(np.array([0, 2]), t, t_min, np.ones((2, 6)))
    with pytest.raises(ValueError, match="2 rows need 2"):
        bank.update_rows(np.array([0, 1]), t, t_min, np.ones((2, 5)))
