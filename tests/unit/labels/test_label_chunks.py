"""Labels computed chunk by chunk equal ``label_both_sides`` of the whole history, every column bit for
bit (the ATR from the anchor, the warm-up, the horizon past the chunk and the weights normalised over
the whole event set), wherever the chunks are cut."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.labels import label_both_sides
from tickwise.core.labels.chunked import label_chunks
from tickwise.core.labels.spec import LabelSpec
from tickwise.domain.calendar import NSE
from tickwise.domain.timeframe import Timeframe

KEY = ["side", "time"]
CandleFactory = Callable[..., pd.DataFrame]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize(
    "starts",
    [[0], [0, 100], [0, 375, 750], [0, 5, 370, 371, 380, 1000, 1120]],
    ids=["one chunk", "inside the warm-up", "at sessions", "mid-session and inside the horizon"],
)
def test_chunked_labels_equal_the_whole_history_labels(
    session_candles: CandleFactory, starts: list[int]
) -> None:
    candles = session_candles(days=3)
    holes = candles.drop(index=[200, 201, 202, 900]).reset_index(drop=True)  # missing minutes too
    for data in (candles, holes):
        want, _ = label_both_sides(data, LabelSpec(), Timeframe.M1, NSE, instrument_token=5)
        got = pd.concat(list(label_chunks(data, starts, LabelSpec(), Timeframe.M1, NSE, instrument_token=5)))
        want, got = _sorted(want), _sorted(got)
        assert list(got.columns) == list(want.columns) and len(got) == len(want) > 0
        for col in want.columns:
            a, b = got[col].to_numpy(), want[col].to_numpy()
            if a.dtype.kind == "f":
                assert np.array_equal(a, b, equal_nan=True), col
            else:
                assert (a == b).all(), col


def test_chunk_starts_must_begin_at_the_anchor_and_increase(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    for starts in ([10], [0, 50, 50]):
        with pytest.raises(ValueError, match="begin at 0 and increase"):
            list(label_chunks(candles, starts, LabelSpec(), Timeframe.M1, NSE))


def test_no_candles_give_no_chunks() -> None:
    empty = pd.DataFrame({c: [] for c in ("time", "open", "high", "low", "close")})
    assert list(label_chunks(empty, [0], LabelSpec(), Timeframe.M1, NSE)) == []
