"""The feed close as columns takes the minute's bars from the groups kept as bars open (issue 14): over
random tick streams it closes exactly what the object path :meth:`CandleBuilder.close_through` (a scan of
every instrument) closes, in the same order, with the same ``obi_5`` bits and the same builder state."""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.adapters.kite.codec import decode_frame, encode_frame
from tickwise.core.candles import CandleBuilder
from tickwise.domain.bar import Bar
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

DAYS = (date(2025, 1, 6), date(2025, 1, 7))  # a session change in the middle of a stream
OPENS = tuple(datetime(d.year, d.month, d.day, 9, 15, tzinfo=IST) for d in DAYS)
# NSE equity tokens carry a book on the wire; segment 9 is an index, decoded without one.
TOKENS = (257, 513, 769, 1025, 1281, 2313)

# book kinds: none, levels (a plain Depth), decoded (the codec's lazy book), and the two empty ones
NO_BOOK, LEVELS, DECODED, EMPTY_LEVELS, EMPTY_DECODED = range(5)


def _tick(token: int, at: datetime, price: float, volume: int | None, book: int, seed: int) -> Tick:
    depth = None
    if book != NO_BOOK:
        empty = book in (EMPTY_LEVELS, EMPTY_DECODED)
        depth = Depth(
            buy=tuple(DepthLevel(0 if empty else (seed * (i + 3)) % 997, price - 0.05 * (i + 1), 1) for i in range(5)),
            sell=tuple(DepthLevel(0 if empty else (seed * (i + 7)) % 991, price + 0.05 * (i + 1), 2) for i in range(5)),
        )  # fmt: skip
    tick = Tick(token, "full", True, price, volume_traded=volume, exchange_timestamp=at, depth=depth)
    if book in (DECODED, EMPTY_DECODED) or token & 0xFF == 9:
        (tick,) = decode_frame(encode_frame([tick], "full"))
    return tick


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _fields(bar: Bar) -> tuple[object, ...]:
    c = bar.candle
    values = (
        c.instrument_token,
        c.timeframe,
        c.time,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.oi,
        c.source,
    )
    return (*values, tuple(type(v) for v in values), _bits(bar.obi_5), type(bar), type(c))


def _counters(b: CandleBuilder) -> tuple[int, ...]:
    return (b.late_ticks, b.late_after_feed_close, b.ticks, b.invalid_ticks, b.outside_session_ticks)


def _states(b: CandleBuilder) -> dict[int, tuple[object, ...]]:
    # The state a later tick reads: the day, the volume baseline, and what was closed and how.
    return {
        token: (s.day, s.baseline, s.closed_until, s.closed_open, s.closed_by_feed, b.open_bar_time(token))
        for token, s in b._states.items()
    }


events = st.lists(
    st.tuples(
        st.sampled_from(TOKENS),
        st.integers(0, 1),  # day
        st.integers(0, 330),  # second of the session: five minutes and a half, some skipped per token
        st.integers(-20, 30),  # seconds the tick arrives late by (negative: early, in arrival order)
        st.floats(90.0, 110.0, allow_nan=False),
        st.one_of(st.none(), st.integers(0, 60)),  # volume step (a negative one: a regressing counter)
        st.sampled_from(range(5)),
        st.integers(1, 10_000),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    events=events,
    timeframe=st.sampled_from([Timeframe.M1, Timeframe.M5]),
    closes=st.lists(st.integers(0, 80), max_size=12),
)
def test_a_close_from_the_open_groups_equals_a_close_that_scans_every_instrument(
    events: list[tuple[int, int, int, int, float, int | None, int, int]],
    timeframe: Timeframe,
    closes: list[int],
) -> None:
    cumulative: dict[int, int] = {}
    stream: list[tuple[float, Tick]] = []
    for token, day, second, delay, price, step, book, seed in sorted(events, key=lambda e: (e[1], e[2])):
        volume = None
        if step is not None:
            cumulative[token] = max(0, cumulative.get(token, 0) + step - (15 if seed % 7 == 0 else 0))
            volume = cumulative[token]
        at = OPENS[day] + timedelta(seconds=second)
        stream.append((day * 100_000 + second + delay, _tick(token, at, price, volume, book, seed)))
    stream.sort(key=lambda arrival: arrival[0])  # arrival order: some ticks after their bar closed
    close_after = set(closes)

    scanning, grouped = CandleBuilder(timeframe), CandleBuilder(timeframe)
    latest: datetime | None = None
    for i, (_, tick) in enumerate(stream):
        assert [_fields(b) for b in scanning.on_tick(tick)] == [_fields(b) for b in grouped.on_tick(tick)]
        assert tick.exchange_timestamp is not None
        latest = tick.exchange_timestamp if latest is None else max(latest, tick.exchange_timestamp)
        if i in close_after or i % 9 == 8:
            # the feed has moved to ``latest``'s minute: close what ends at or before its start
            boundary = latest.replace(second=0) - timedelta(minutes=i % 2)
            closed = scanning.close_through(boundary)
            block = grouped.close_through_columns(boundary)
            assert block.tokens == [b.instrument_token for b in closed]
            assert [_bits(x) for x in block.obis] == [_bits(b.obi_5) for b in closed]
            assert [_fields(b) for b in block] == [_fields(b) for b in closed]
        assert _counters(scanning) == _counters(grouped)
        assert _states(scanning) == _states(grouped)
    last = grouped.close_through_columns(OPENS[1] + timedelta(hours=7))
    assert [_fields(b) for b in last] == [
        _fields(b) for b in scanning.close_through(OPENS[1] + timedelta(hours=7))
    ]
    assert _states(scanning) == _states(grouped)
    assert grouped.flush() == [] == scanning.flush()


def test_a_late_instruments_bar_of_an_already_closed_minute_closes_at_the_next_feed_close() -> None:
    b = CandleBuilder()
    minute = OPENS[0]
    b.on_tick(_tick(257, minute + timedelta(seconds=5), 100.0, 10, DECODED, 3))
    assert b.close_through_columns(minute + timedelta(minutes=1)).tokens == [257]
    # An instrument seen for the first time, stamped in the minute just closed: a new bar, not late.
    b.on_tick(_tick(513, minute + timedelta(seconds=50), 101.0, 4, LEVELS, 5))
    b.on_tick(_tick(257, minute + timedelta(seconds=65), 102.0, 12, NO_BOOK, 1))
    block = b.close_through_columns(minute + timedelta(minutes=2))
    assert block.tokens == [513, 257]  # by open instant first, then token
    assert block.times == [minute, minute + timedelta(minutes=1)]
    assert block.volumes == [4, 2]
    assert math.isnan(block.obis[1]) and not math.isnan(block.obis[0])
    assert b.late_ticks == 0
