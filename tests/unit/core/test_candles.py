import math
import time
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.candles import CandleBuilder
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

DAY = date(2025, 1, 6)
NEXT_DAY = date(2025, 1, 7)
TOKEN = 408065


def at(hh: int, mm: int, ss: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST)


def tick(
    price: float,
    ts: datetime,
    volume: int | None = None,
    token: int = TOKEN,
    depth: Depth | None = None,
    oi: int | None = None,
) -> Tick:
    return Tick(
        instrument_token=token,
        mode="full" if depth is not None else "quote",
        tradable=True,
        last_price=price,
        volume_traded=volume,
        exchange_timestamp=ts,
        depth=depth,
        oi=oi,
    )


def feed(builder: CandleBuilder, ticks: list[Tick]) -> list[Bar]:
    out: list[Bar] = []
    for t in ticks:
        out.extend(builder.on_tick(t))
    return out


def test_minute_candle_takes_first_max_min_last_price_and_aligns_to_the_minute() -> None:
    b = CandleBuilder()
    closed = feed(
        b,
        [
            tick(100.0, at(9, 15, 0), 10),
            tick(101.5, at(9, 15, 12), 20),
            tick(99.5, at(9, 15, 30), 25),
            tick(100.5, at(9, 15, 59), 40),
            tick(100.7, at(9, 16, 1), 41),
        ],
    )
    assert len(closed) == 1
    c = closed[0].candle
    assert c.time == at(9, 15)
    assert c.timeframe is Timeframe.M1
    assert (c.open, c.high, c.low, c.close, c.volume) == (100.0, 101.5, 99.5, 100.5, 40)
    assert c.source == "live"
    assert b.ticks == 5  # four in the closed bar, one opening the next


def test_volume_is_the_delta_of_cumulative_volume_between_minute_ends() -> None:
    b = CandleBuilder()
    closed = feed(
        b,
        [
            tick(100.0, at(9, 15, 5), 500),  # includes pre-open volume: first minute counts from 0
            tick(100.0, at(9, 15, 50), 700),
            tick(100.0, at(9, 16, 10), 750),
            tick(100.0, at(9, 16, 40), 900),
            tick(100.0, at(9, 18, 0), 1000),  # 09:17 had no ticks
            tick(100.0, at(9, 19, 0), 1000),
        ],
    )
    assert [(c.candle.time, c.candle.volume) for c in closed] == [
        (at(9, 15), 700),
        (at(9, 16), 200),
        (at(9, 18), 100),
    ]


def test_minutes_without_ticks_produce_no_candle() -> None:
    b = CandleBuilder()
    closed = feed(b, [tick(100.0, at(9, 20, 1), 1), tick(101.0, at(9, 25, 1), 2)])
    closed += b.flush()
    assert [c.candle.time for c in closed] == [at(9, 20), at(9, 25)]


def test_volume_resets_at_a_new_session() -> None:
    b = CandleBuilder()
    closed = feed(
        b,
        [
            tick(100.0, at(15, 29, 50), 90_000),
            tick(100.0, at(9, 15, 1, day=NEXT_DAY), 1_200),
        ],
    )
    closed += b.flush()
    assert [(c.candle.time, c.candle.volume) for c in closed] == [
        (at(15, 29), 90_000),
        (at(9, 15, day=NEXT_DAY), 1_200),
    ]


def test_timer_closes_a_bar_only_after_the_grace_period() -> None:
    b = CandleBuilder(grace_s=2.0)
    feed(b, [tick(100.0, at(10, 0, 30), 5)])
    assert b.on_clock(at(10, 1, 1)) == []
    closed = b.on_clock(at(10, 1, 2))
    assert [c.candle.time for c in closed] == [at(10, 0)]
    assert b.on_clock(at(10, 5)) == []


def test_late_tick_after_a_timer_close_is_counted_and_does_not_change_the_candle() -> None:
    b = CandleBuilder(grace_s=2.0)
    feed(b, [tick(100.0, at(10, 0, 30), 5)])
    closed = b.on_clock(at(10, 1, 3))
    assert b.on_tick(tick(150.0, at(10, 0, 59), 9)) == []
    assert b.late_ticks == 1
    assert closed[0].candle.high == 100.0
    # The late tick's volume is not lost: it lands in the next bar through the cumulative counter.
    feed(b, [tick(100.0, at(10, 1, 5), 12)])
    assert [c.candle.volume for c in b.flush()] == [7]


def test_tick_older_than_the_forming_bar_is_late() -> None:
    b = CandleBuilder()
    feed(b, [tick(100.0, at(10, 0, 30), 5), tick(100.0, at(10, 1, 30), 6)])
    assert b.on_tick(tick(100.0, at(10, 0, 45), 7)) == []
    assert b.on_tick(tick(100.0, at(15, 0, day=date(2025, 1, 3)), 7)) == []
    assert b.late_ticks == 2


def test_ticks_outside_the_session_are_ignored_and_counted() -> None:
    b = CandleBuilder()
    assert (
        feed(
            b,
            [
                tick(100.0, at(9, 8), 10),
                tick(100.0, at(15, 30), 10),
                tick(1.0, at(12, 0, day=date(2025, 1, 4))),
            ],
        )
        == []
    )
    assert b.outside_session_ticks == 3
    assert b.flush() == []


def test_instruments_are_built_independently() -> None:
    b = CandleBuilder()
    closed = feed(
        b,
        [
            tick(10.0, at(9, 15, 1), 1, token=1),
            tick(20.0, at(9, 15, 2), 2, token=2),
            tick(11.0, at(9, 16, 1), 3, token=1),
        ],
    )
    assert [(c.candle.instrument_token, c.candle.close) for c in closed] == [(1, 10.0)]
    closed = b.on_clock(at(9, 17, 5))
    assert [(c.candle.instrument_token, c.candle.time) for c in closed] == [(2, at(9, 15)), (1, at(9, 16))]


def test_obi_is_last_full_tick_value_and_nan_without_depth() -> None:
    book1 = Depth(buy=(DepthLevel(30, 99.9, 1),), sell=(DepthLevel(10, 100.1, 1),))
    book2 = Depth(buy=(DepthLevel(10, 99.9, 1),), sell=(DepthLevel(30, 100.1, 1),))
    b = CandleBuilder()
    closed = feed(
        b,
        [
            tick(100.0, at(10, 0, 1), 1, depth=book1),
            tick(100.0, at(10, 0, 2), 2, depth=book2),
            tick(100.0, at(10, 0, 3), 3),  # quote tick: no book, keeps the last full value
            tick(100.0, at(10, 1, 1), 4),
        ],
    )
    assert closed[0].obi_5 == -0.5
    assert math.isnan(b.flush()[0].obi_5)


def test_oi_is_the_last_tick_value() -> None:
    b = CandleBuilder()
    feed(b, [tick(100.0, at(10, 0, 1), 1, oi=500), tick(100.0, at(10, 0, 2), 2, oi=520)])
    assert b.flush()[0].candle.oi == 520


def test_index_ticks_without_volume_give_zero_volume() -> None:
    b = CandleBuilder()
    feed(
        b, [tick(23000.0, at(10, 0, 1), None, token=256265), tick(23010.0, at(10, 0, 9), None, token=256265)]
    )
    [c] = b.flush()
    assert c.candle.volume == 0
    assert c.candle.close == 23010.0


def test_five_minute_builder_aligns_to_the_session_open() -> None:
    b = CandleBuilder(Timeframe.M5)
    feed(b, [tick(100.0, at(9, 19, 59), 1), tick(101.0, at(9, 20, 0), 2)])
    assert [c.candle.time for c in b.flush()] == [at(9, 20)]
    with pytest.raises(ValueError):
        CandleBuilder(Timeframe.D1)


def test_last_sixty_minute_bar_ends_at_the_session_close() -> None:
    b = CandleBuilder(Timeframe.M60, grace_s=0)
    feed(b, [tick(100.0, at(15, 20), 1)])
    assert b.on_clock(at(15, 29, 59)) == []
    assert [c.candle.time for c in b.on_clock(at(15, 30))] == [at(15, 15)]


def test_flush_closes_every_open_bar_in_time_order() -> None:
    b = CandleBuilder()
    feed(b, [tick(100.0, at(10, 3), 1, token=2), tick(100.0, at(10, 2), 1, token=1)])
    assert [c.candle.instrument_token for c in b.flush()] == [1, 2]
    assert b.flush() == []


def test_closed_bars_come_ordered_by_open_instant_then_token_whatever_order_instruments_first_ticked() -> (
    None
):
    b = CandleBuilder()
    # Tokens first seen out of order, bars of two minutes open at once (a quiet instrument's earlier bar).
    feed(
        b,
        [
            tick(100.0, at(10, 2), 1, token=9),
            tick(100.0, at(10, 1), 1, token=5),
            tick(100.0, at(10, 2), 1, token=3),
            tick(100.0, at(10, 1), 1, token=7),
            tick(100.0, at(10, 2), 1, token=1),
        ],
    )
    closed = b.close_through(at(10, 3))
    assert [(c.candle.time, c.candle.instrument_token) for c in closed] == [
        (at(10, 1), 5),
        (at(10, 1), 7),
        (at(10, 2), 1),
        (at(10, 2), 3),
        (at(10, 2), 9),
    ]


def test_closed_bars_equal_the_ones_the_dataclass_constructors_build() -> None:
    b = CandleBuilder()
    feed(b, [tick(100.0, at(10, 1), 5, token=4, oi=12), tick(101.0, at(10, 1, 30), 9, token=4, oi=13)])
    (bar,) = b.close_through(at(10, 2))
    expected = Bar(Candle(4, Timeframe.M1, at(10, 1), 100.0, 101.0, 100.0, 101.0, 9, 13, "live"))
    assert bar == expected
    assert type(bar) is Bar and type(bar.candle) is Candle
    assert math.isnan(bar.obi_5)


def test_building_a_session_of_ticks_is_fast() -> None:
    b = CandleBuilder()
    start = at(9, 15)
    ticks = [
        tick(100.0 + (i % 5), start + timedelta(seconds=i // 20), i, token=i % 20) for i in range(60_000)
    ]
    t0 = time.perf_counter()
    closed = feed(b, ticks)
    assert len(closed) == 20 * 49
    assert time.perf_counter() - t0 < 3.0


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 150), st.integers(1, 400), st.integers(0, 50), st.booleans()),
        min_size=1,
        max_size=80,
    ),
    pre_open_volume=st.integers(0, 1000),
)
def test_builder_matches_the_reference_rule_for_any_tick_sequence(
    steps: list[tuple[int, int, int, bool]], pre_open_volume: int
) -> None:
    """Reference: group ticks by exchange minute; volume = cumulative at the minute's last tick minus
    cumulative at the previous non-empty minute's last tick (0 before the first)."""
    b = CandleBuilder(grace_s=2.0)
    second, volume = 0, pre_open_volume
    ticks: list[tuple[int, float, int]] = []
    built: list[Bar] = []
    for gap, price_ticks, traded, clock in steps:
        second = min(second + gap, 22_499)
        volume += traded
        ticks.append((second, price_ticks * 0.05, volume))
        ts = at(9, 15) + timedelta(seconds=second)
        if clock:
            built += b.on_clock(ts)  # a clock at the tick's own time never closes its bar early
        built += b.on_tick(tick(price_ticks * 0.05, ts, volume))
    built += b.flush()

    expected = []
    previous_cumulative = 0
    for minute in sorted({s // 60 for s, _, _ in ticks}):
        in_minute = [t for t in ticks if t[0] // 60 == minute]
        prices = [p for _, p, _ in in_minute]
        last_cumulative = in_minute[-1][2]
        expected.append(
            (
                at(9, 15) + timedelta(minutes=minute),
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                last_cumulative - previous_cumulative,
            )
        )
        previous_cumulative = last_cumulative
    got = [
        (c.candle.time, c.candle.open, c.candle.high, c.candle.low, c.candle.close, c.candle.volume)
        for c in built
    ]
    assert got == expected
    assert b.late_ticks == 0
