"""The full-mode decoder builds a tick's book on first read; it must be indistinguishable from an eager one."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import datetime

from tickwise.adapters.kite.codec import decode_frame, encode_frame
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

TOKEN = 408065
WHEN = datetime(2026, 1, 2, 10, 0, 5, tzinfo=IST)


def full_tick(first_bid_qty: int = 10) -> Tick:
    buy = tuple(DepthLevel(first_bid_qty + k, (150000 - 5 * k) / 100, k + 1) for k in range(5))
    sell = tuple(DepthLevel(20 + k, (150005 + 5 * k) / 100, k + 2) for k in range(5))
    return Tick(
        TOKEN, "full", True, 1500.0, 7, 1499.5, 1000, 5, 6, OHLC(1490.0, 1510.0, 1480.0, 1495.0),
        (1500.0 - 1495.0) * 100 / 1495.0, WHEN, 12, 13, 11, WHEN, Depth(buy, sell),
    )  # fmt: skip


def decoded(tick: Tick) -> Tick:
    (out,) = decode_frame(encode_frame([tick]))
    return out


def test_a_decoded_full_tick_equals_the_eagerly_built_tick_both_ways() -> None:
    eager = full_tick()
    lazy = decoded(eager)
    assert lazy == eager and eager == lazy
    assert lazy.depth == eager.depth and eager.depth == lazy.depth
    assert hash(lazy.depth) == hash(eager.depth) and hash(lazy) == hash(eager)


def test_a_decoded_book_is_a_depth_with_the_levels_sent() -> None:
    lazy = decoded(full_tick())
    assert isinstance(lazy.depth, Depth)
    assert lazy.depth.buy == full_tick().depth.buy  # type: ignore[union-attr]
    assert lazy.depth.sell[4] == DepthLevel(24, 1500.25, 6)
    assert repr(lazy.depth) == repr(full_tick().depth)


def test_two_decoded_books_differ_when_one_level_differs() -> None:
    assert decoded(full_tick(10)).depth != decoded(full_tick(11)).depth
    assert decoded(full_tick(10)).depth == decoded(full_tick(10)).depth
    assert decoded(full_tick(10)) != full_tick(11)


def test_a_decoded_tick_pickles_as_a_plain_depth() -> None:
    lazy = decoded(full_tick())
    again = pickle.loads(pickle.dumps(lazy))
    assert again == full_tick() and type(again.depth) is Depth


def test_reusing_the_frame_buffer_does_not_change_a_decoded_book() -> None:
    buffer = bytearray(encode_frame([full_tick(10)]))
    (tick,) = decode_frame(buffer)
    buffer[:] = encode_frame([full_tick(99)])
    assert tick.depth is not None and tick.depth.buy[0].quantity == 10


def test_replace_on_a_decoded_tick_keeps_its_book() -> None:
    lazy = decoded(full_tick())
    assert replace(lazy, last_price=1.0).depth == full_tick().depth
