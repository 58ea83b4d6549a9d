"""Order-book features computed from a tick's market depth.

``obi_5`` (order-book imbalance over the best five levels) is

    (sum of bid quantities - sum of ask quantities) / (sum of bid quantities + sum of ask quantities)

in ``[-1, 1]``: +1 when only bids rest on the book, -1 when only asks do. It is NaN when the tick has
no depth (``ltp``/``quote`` mode, index packets) or when all ten levels are empty, because "no book"
is not the same as "a balanced book" (0).
"""

from __future__ import annotations

import math

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
