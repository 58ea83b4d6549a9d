"""``obi_5`` of a decoded book is read from its wire values: the same number as from its levels, and no
level object is built for it (the candle close reads one book per bar, issue 14)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from tickwise.adapters.kite.codec import decode_frame, encode_frame
from tickwise.core.order_book import order_book_imbalance
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST

WHEN = datetime(2026, 1, 2, 10, 0, 5, tzinfo=IST)


def _tick(token: int, bids: list[int], asks: list[int]) -> Tick:
    buy = tuple(DepthLevel(q, (150000 - 5 * k) / 100, k + 1) for k, q in enumerate(bids))
    sell = tuple(DepthLevel(q, (150005 + 5 * k) / 100, k + 1) for k, q in enumerate(asks))
    return Tick(token, "full", True, 1500.0, exchange_timestamp=WHEN, depth=Depth(buy, sell))


def test_a_decoded_books_imbalance_equals_its_levels_imbalance_at_every_depth() -> None:
    rng = np.random.default_rng(11)
    ticks = [
        # NSE equity tokens (segment byte 1; a token of segment 9 is an index, sent without a book)
        _tick(256 * i + 1, rng.integers(0, 5000, 5).tolist(), rng.integers(0, 5000, 5).tolist())
        for i in range(1, 301)
    ]
    ticks.append(_tick(256 * 999 + 1, [0] * 5, [0] * 5))  # an empty book: NaN, not 0
    ticks.append(_tick(256 * 998 + 1, [2**32 - 1] * 5, [0] * 5))  # the largest quantity the wire carries
    decoded = decode_frame(encode_frame(ticks, "full"))
    for eager, lazy in zip(ticks, decoded, strict=True):
        for levels in range(0, 8):
            want = order_book_imbalance(eager.depth, levels)
            got = order_book_imbalance(lazy.depth, levels)
            assert (math.isnan(want) and math.isnan(got)) or want == got, (eager.instrument_token, levels)


@pytest.mark.parametrize("levels", [1, 5])
def test_reading_a_decoded_books_imbalance_builds_no_level(levels: int) -> None:
    (lazy,) = decode_frame(encode_frame([_tick(257, [10, 20, 30, 40, 50], [5, 5, 5, 5, 5])], "full"))
    want = (10 - 5) / 15 if levels == 1 else (150 - 25) / (150 + 25)
    assert order_book_imbalance(lazy.depth, levels) == want
    assert lazy.depth._levels is None  # type: ignore[union-attr]


def test_many_decoded_books_sum_at_once_to_each_books_own_sums_at_every_depth() -> None:
    rng = np.random.default_rng(12)
    ticks = [
        _tick(256 * i + 1, rng.integers(0, 5000, 5).tolist(), rng.integers(0, 5000, 5).tolist())
        for i in range(1, 41)
    ]
    ticks.append(_tick(256 * 998 + 1, [2**32 - 1] * 5, [2**32 - 1] * 5))  # the largest the wire carries
    books: list[Any] = [t.depth for t in decode_frame(encode_frame(ticks, "full"))]
    kind = type(books[0])  # the codec's lazy book
    for levels in range(0, 8):
        bid, ask = kind.quantity_sums_many(books, levels)
        assert bid.dtype == ask.dtype == np.int64
        assert list(zip(bid.tolist(), ask.tolist(), strict=True)) == [b.quantity_sums(levels) for b in books]
