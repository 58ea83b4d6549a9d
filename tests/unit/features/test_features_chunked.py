"""Features computed chunk after chunk from a carried state equal one ``compute`` of the whole history,
bit for bit (NaN = NaN), wherever the chunks are cut."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.chunked import ChunkedFeatures
from tickwise.domain.errors import DataValidationError


def _chunked(calc: FeatureCalculator, candles: pd.DataFrame, cuts: list[int]) -> pd.DataFrame:
    chunked = ChunkedFeatures(calc)
    carry = chunked.start()
    frames = []
    bounds = [0, *cuts, len(candles)]
    for lo, hi in itertools.pairwise(bounds):
        # The carry crosses a pickle on every cut, as it would between processes.
        carry = pickle.loads(pickle.dumps(carry))
        frame, carry = chunked.compute(candles.iloc[lo:hi].reset_index(drop=True), carry)
        frames.append(frame.copy())
    assert carry.bars == len(candles)
    return pd.concat(frames, ignore_index=True)


def _assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert (got["time"].to_numpy() == want["time"].to_numpy()).all()
    a = got.drop(columns="time").to_numpy()
    b = want.drop(columns="time").to_numpy()
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    bad = [want.columns[1 + j] for j in np.flatnonzero(differ.any(axis=0))]
    assert not bad, f"features differ from the single pass: {bad}"


@pytest.fixture(scope="module")
def calc() -> FeatureCalculator:
    return FeatureCalculator()


@pytest.fixture(scope="module")
def history(candle_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    # 8 sessions with missing minutes: the cuts below fall mid-session, mid-context-bar, inside the
    # warm-up (bar 40, before FFD's 281 and the 60m warm-up of 1199) and at session boundaries.
    return candle_factory(3_000, seed=11, drop_every=31)


def test_chunked_features_equal_the_single_pass_for_any_cuts(calc, history):
    want = calc.compute(history)
    n = len(history)
    for cuts in ([40], [281, 700], [375, 750, 1125, 1500, 1875], sorted({n // 3, n // 2, n - 7})):
        _assert_identical(_chunked(calc, history, cuts), want)


def test_one_bar_chunks_equal_the_single_pass(calc, history):
    part = history.iloc[:420].reset_index(drop=True)
    _assert_identical(_chunked(calc, part, list(range(300, 420))), calc.compute(part))


def test_a_chunk_that_does_not_follow_the_carry_is_refused(calc, history):
    chunked = ChunkedFeatures(calc)
    _, carry = chunked.compute(history.iloc[:500].reset_index(drop=True), chunked.start())
    with pytest.raises(DataValidationError, match="after the previous chunk"):
        chunked.compute(history.iloc[400:600].reset_index(drop=True), carry)


def test_the_carry_is_small_next_to_the_chunk_matrix(calc, history):
    chunked = ChunkedFeatures(calc)
    _, carry = chunked.compute(history, chunked.start())
    # What grows with the history is the 1m inputs (5 float64) and the context bars, not the features.
    assert carry.nbytes < 64 * len(history) + 200_000
