import math

from tickwise.core.order_book import obi_5, order_book_imbalance
from tickwise.domain.tick import Depth, DepthLevel, Tick


def _depth(bids: list[int], asks: list[int]) -> Depth:
    return Depth(
        buy=tuple(DepthLevel(quantity=q, price=100.0 - i * 0.05, orders=1) for i, q in enumerate(bids)),
        sell=tuple(DepthLevel(quantity=q, price=100.05 + i * 0.05, orders=1) for i, q in enumerate(asks)),
    )


def test_imbalance_is_bid_minus_ask_over_total_of_five_levels() -> None:
    depth = _depth([10, 20, 30, 40, 50], [5, 5, 5, 5, 30])
    assert order_book_imbalance(depth) == (150 - 50) / 200


def test_imbalance_ignores_levels_beyond_five() -> None:
    depth = _depth([1, 1, 1, 1, 1, 1000], [5, 0, 0, 0, 0, 1000])
    assert order_book_imbalance(depth) == 0.0


def test_imbalance_is_nan_without_a_book() -> None:
    assert math.isnan(order_book_imbalance(None))
    assert math.isnan(order_book_imbalance(_depth([0] * 5, [0] * 5)))


def test_one_sided_book_gives_plus_or_minus_one() -> None:
    assert order_book_imbalance(_depth([7, 0, 0, 0, 0], [0] * 5)) == 1.0
    assert order_book_imbalance(_depth([0] * 5, [3, 0, 0, 0, 0])) == -1.0


def test_obi_5_of_a_quote_tick_is_nan() -> None:
    tick = Tick(instrument_token=408065, mode="quote", tradable=True, last_price=100.0)
    assert math.isnan(obi_5(tick))
    full = Tick(instrument_token=408065, mode="full", tradable=True, last_price=100.0, depth=_depth([3], [1]))
    assert obi_5(full) == 0.5
