"""Order-book features computed from a tick's market depth.

``obi_5`` (order-book imbalance over the best five levels) is

    (sum of bid quantities - sum of ask quantities) / (sum of bid quantities + sum of ask quantities)

in ``[-1, 1]``: +1 when only bids rest on the book, -1 when only asks do. It is NaN when the tick has
no depth (``ltp``/``quote`` mode, index packets) or when all ten levels are empty, because "no book"
is not the same as "a balanced book" (0).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from itertools import compress, repeat

import numpy as np

from tickwise.domain.tick import Depth, Tick

OBI_LEVELS = 5


def order_book_imbalance(depth: Depth | None, levels: int = OBI_LEVELS) -> float:
    """Imbalance of the best ``levels`` bid and ask quantities; NaN when there is no book."""
    if depth is None:
        return math.nan
    bid: int
    ask: int
    sums = getattr(depth, "quantity_sums", None)  # a decoded book: the same sums, no level objects
    if sums is not None:
        bid, ask = sums(levels)
    else:
        bid = 0
        for level in depth.buy[:levels]:
            bid += level.quantity
        ask = 0
        for level in depth.sell[:levels]:
            ask += level.quantity
    total = bid + ask
    if total <= 0:
        return math.nan
    return (bid - ask) / total


def obi_5(tick: Tick) -> float:
    """The ``obi_5`` feature of one tick (NaN unless it is a full-mode tick with a non-empty book)."""
    return order_book_imbalance(tick.depth, OBI_LEVELS)


def newest_imbalance(books: Sequence[Depth], default: float = math.nan) -> float:
    """The imbalance of the newest of ``books`` (oldest first) that has a book; ``default`` if none."""
    for depth in reversed(books):
        imbalance = order_book_imbalance(depth, OBI_LEVELS)
        if not math.isnan(imbalance):
            return imbalance
    return default


def newest_imbalances(books_per_bar: Sequence[Sequence[Depth]], defaults: Sequence[float]) -> list[float]:
    """:func:`newest_imbalance` of each bar's books (a minute's bars at once): the same floats.

    Each bar's newest book (its last) is read first. Decoded books whose
    type offers ``quantity_sums_many`` (the codec's lazy book) are summed in one call; the division is
    the one :func:`order_book_imbalance` does (the sums are exact in float64, so numpy's quotient is
    Python's to the bit). A bar whose newest book is empty, or of another type, takes the per-book
    path."""
    newest = [books[-1] if books else None for books in books_per_bar]
    kind = type(next((d for d in newest if d is not None), None))
    many = getattr(kind, "quantity_sums_many", None)
    # The books' types compared in C-level maps; every bar's newest book of the one kind (the usual
    # minute) needs no mask at all.
    kinds = list(map(type, newest))
    every = many is not None and kinds.count(kind) == len(kinds)
    if every:
        mask: list[bool] = [True] * len(newest)
        batch = newest
    else:
        mask = list(map(operator.is_, kinds, repeat(kind))) if many is not None else [False] * len(newest)
        batch = list(compress(newest, mask))
    out = np.array(defaults, dtype=np.float64)
    left: list[int] = []  # bars whose obi the batch did not give
    if batch and many is not None:
        rows = np.arange(len(newest)) if every else np.flatnonzero(mask)
        bid, ask = many(batch, OBI_LEVELS)
        total = bid + ask
        booked = total > 0
        out[rows[booked]] = (bid - ask)[booked].astype(np.float64) / total[booked].astype(np.float64)
        left = rows[~booked].tolist()
    if len(batch) + newest.count(None) != len(newest):
        left += [i for i, d in enumerate(newest) if d is not None and not mask[i]]
    values: list[float] = out.tolist()
    for i in left:
        values[i] = newest_imbalance(books_per_bar[i], values[i])
    return values
