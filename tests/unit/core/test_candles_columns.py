"""A feed close as columns (:meth:`CandleBuilder.close_through_columns`) closes exactly what
:meth:`CandleBuilder.close_through` closes: the same bars (field by field, same types), in the same
order, with the same builder state after, and the feature bank reads the same numbers from either."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.candles import CandleBuilder, ClosedBars
from tickwise.core.features.bank import _bar_arrays
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST

DAY = date(2025, 1, 6)
OPEN = datetime(DAY.year, DAY.month, DAY.day, 9, 15, tzinfo=IST)


def _tick(token: int, second: int, price: float, volume: int | None, oi: int | None, book: int) -> Tick:
    depth = None
    if book:
        depth = Depth(
            buy=tuple(DepthLevel(book * (i + 1), price - 0.05 * (i + 1), 1) for i in range(5)),
            sell=tuple(DepthLevel(7 * (i + 1), price + 0.05 * (i + 1), 1) for i in range(5)),
        )
    return Tick(
        instrument_token=token,
        mode="full",
        tradable=True,
        last_price=price,
        volume_traded=volume,
        exchange_timestamp=OPEN + timedelta(seconds=second),
        oi=oi,
        depth=depth,
    )


def _fields(bar: Bar) -> tuple[object, ...]:
    c = bar.candle
    values = (c.instrument_token, c.timeframe, c.time, c.open, c.high, c.low, c.close, c.volume, c.oi)
    types = tuple(type(v) for v in values)
    obi = "nan" if math.isnan(bar.obi_5) else bar.obi_5
    return (*values, c.source, obi, types, type(bar), type(c))


def _state(b: CandleBuilder) -> tuple[object, ...]:
    return (b.late_ticks, b.late_after_feed_close, b.ticks, b.invalid_ticks, b.outside_session_ticks)


ticks = st.lists(
    st.tuples(
        st.integers(1, 6),  # token
        st.integers(0, 240),  # second of the session (four minutes)
        st.floats(90.0, 110.0, allow_nan=False),
        st.one_of(st.none(), st.integers(0, 10_000)),
        st.one_of(st.none(), st.integers(0, 500)),
        st.integers(0, 3),  # 0: no book
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(ticks=ticks, boundaries=st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_a_close_as_columns_closes_the_bars_and_state_a_close_as_objects_does(
    ticks: list[tuple[int, int, float, int | None, int | None, int]], boundaries: list[int]
) -> None:
    # Ticks in exchange-time order per instrument (as the validator guarantees), interleaved.
    stream = sorted(ticks, key=lambda t: t[1])
    objects, columns = CandleBuilder(), CandleBuilder()
    cuts = sorted(set(boundaries))
    pending = list(stream)
    for minute in cuts:
        boundary = OPEN + timedelta(minutes=minute)
        before = [t for t in pending if t[1] < (minute - 1) * 60 + 75]  # some ticks arrive after a close
        pending = pending[len(before) :]
        for t in before:
            got1, got2 = objects.on_tick(_tick(*t)), columns.on_tick(_tick(*t))
            assert [_fields(b) for b in got1] == [_fields(b) for b in got2]
        closed = objects.close_through(boundary)
        block = columns.close_through_columns(boundary)
        assert isinstance(block, ClosedBars)
        assert len(block) == len(closed)
        assert block.tokens == [b.instrument_token for b in closed]
        assert block.times == [b.time for b in closed]
        if closed:
            # the numbers the feature bank reads: the same, to the bit, from the columns
            from_bars = _bar_arrays(closed)
            assert from_bars is not None
            assert from_bars[2].tobytes() == block.values.tobytes()
            shared = all(b.time == closed[0].time for b in closed)
            assert block.instant == (closed[0].time if shared else None)
        assert not block.materialized
        assert [_fields(b) for b in block] == [_fields(b) for b in closed]
        assert block.materialized
        assert _state(objects) == _state(columns)
    for t in pending:
        objects.on_tick(_tick(*t))
        columns.on_tick(_tick(*t))
    assert _state(objects) == _state(columns)
    assert [_fields(b) for b in objects.flush()] == [_fields(b) for b in columns.flush()]


def test_closed_bars_read_as_a_sequence_of_the_bars() -> None:
    b = CandleBuilder()
    for token in (3, 1, 2):
        b.on_tick(_tick(token, 5, 100.0 + token, 10 * token, None, token % 2))
    block = b.close_through_columns(OPEN + timedelta(minutes=1))
    alone = block.bar_at(-1)
    assert not block.materialized  # one bar read alone builds no other
    bars = block.bars()
    assert block.bars() is bars  # built once
    assert alone == bars[-1] and block.bar_at(0) is bars[0]
    assert [block[i] for i in range(3)] == bars == list(block) == block[:]
    assert block[-1].instrument_token == 3
    assert block.instant == OPEN
    assert bars[0].candle == Candle(1, block.timeframe, OPEN, 101.0, 101.0, 101.0, 101.0, 10, None, "live")
    assert np.isnan(block.values[1, 5]) and not np.isnan(block.values[0, 5])
    assert len(b.close_through_columns(OPEN + timedelta(minutes=1))) == 0
