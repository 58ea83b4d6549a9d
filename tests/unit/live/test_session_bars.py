"""The session's bars held as columns give back the very bars appended, at a fraction of the objects' memory."""

from __future__ import annotations

import dataclasses
import math
import sys
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.session_bars import SessionBars

T0 = datetime(2026, 1, 5, 9, 15, tzinfo=IST)


def _bars(n: int, token: int = 7, seed: int = 1, *, one_source: bool = False) -> list[Bar]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        o, h, lo, c = (float(p) for p in np.round(100 + rng.normal(size=4), 2))
        out.append(
            Bar(
                Candle(
                    token,
                    Timeframe.M1,
                    T0 + timedelta(minutes=i),
                    o,
                    max(o, h, lo, c),
                    min(o, h, lo, c),
                    c,
                    int(rng.integers(0, 10**9)),
                    None if i % 3 else int(rng.integers(0, 10**7)),
                    "live" if i % 5 or one_source else "rest",
                ),
                float(rng.normal()) if i % 4 else math.nan,
            )
        )
    return out


def _same(a: Bar, b: Bar) -> None:
    """Equal field for field, with the same types and the same time zone object (NaN equal to NaN)."""
    ca, cb = a.candle, b.candle
    for name in (f.name for f in dataclasses.fields(Candle)):
        va, vb = getattr(ca, name), getattr(cb, name)
        assert type(va) is type(vb) and va == vb, name
    assert ca.time.tzinfo is cb.time.tzinfo and ca.time.isoformat() == cb.time.isoformat()
    assert type(a.obi_5) is float and np.float64(a.obi_5).tobytes() == np.float64(b.obi_5).tobytes()


def test_the_bars_read_back_are_the_bars_appended_field_for_field() -> None:
    bars = _bars(300)
    held = SessionBars()
    for bar in bars:
        held.append(bar)
    assert len(held) == 300
    got = held.bars()
    assert len(got) == 300
    for a, b in zip(got, bars, strict=True):
        _same(a, b)
    assert [c for c in held.candles(10, 20)] == [b.candle for b in bars[10:20]]


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_bars_of_one_source_packed_column_by_column_read_back_the_same(chunk: int) -> None:
    """The engine's bars (one source, timeframe and zone; oi None or not, obi_5 NaN or not) take the
    column-by-column pack; the others (above) are packed bar by bar: both read back the same."""
    bars = _bars(200, one_source=True)
    held = SessionBars()
    for i in range(0, len(bars), chunk):
        for bar in bars[i : i + chunk]:
            held.append(bar)
        held.pack()
    assert held._odd == {}
    for a, b in zip(held.bars(), bars, strict=True):
        _same(a, b)


def test_prices_keep_their_bits_and_times_their_zone_and_microseconds() -> None:
    odd_zone = timezone(timedelta(hours=-3, minutes=-30))
    bars = [
        Bar(
            Candle(
                1,
                Timeframe.M1,
                datetime(2026, 1, 5, 3, 45, 0, 17, tzinfo=UTC),
                0.1 + 0.2,
                1e308,
                5e-324,
                -0.0,
                0,
            )
        ),
        Bar(
            Candle(
                1, Timeframe.M5, datetime(2026, 1, 5, 9, 16, tzinfo=IST), 1 / 3, 2.0, 0.5, 1.0, 2**62, 2**62
            ),
            1.5,
        ),
        Bar(
            Candle(
                1,
                Timeframe.M1,
                datetime(2026, 1, 5, 1, 0, tzinfo=odd_zone),
                math.pi,
                4.0,
                3.0,
                3.5,
                1,
                0,
                "x",
            )
        ),
    ]
    held = SessionBars()
    for bar in bars:
        held.append(bar)
    for a, b in zip(held.bars(), bars, strict=True):
        _same(a, b)


def test_a_bar_with_an_unusual_field_type_is_kept_as_itself() -> None:
    normal = _bars(2)
    int_price = Bar(Candle(7, Timeframe.M1, T0 + timedelta(minutes=5), 100, 101.0, 99.0, 100.5, 10))
    held = SessionBars()
    for bar in (*normal, int_price):
        held.append(bar)
    assert held.bars()[2] is int_price
    held.truncate(2)
    assert len(held.bars()) == 2 and held.before(T0 + timedelta(minutes=10)) == 2


def test_before_and_truncate_select_by_open_instant_as_the_rewind_does() -> None:
    bars = _bars(30)
    held = SessionBars()
    for bar in bars:
        held.append(bar)
    cut = T0 + timedelta(minutes=12, seconds=30)
    k = held.before(cut)
    assert k == len([b for b in bars if b.time < cut]) == 13
    assert held.before(T0 + timedelta(minutes=12)) == 12  # a bar opening at t is not before t
    held.truncate(k)
    assert [b.time for b in held.bars()] == [b.time for b in bars[:13]]
    for bar in _bars(40)[13:]:  # the replayed bars after the rewind
        held.append(bar)
    assert len(held) == 40


def test_a_bar_not_after_the_newest_or_of_another_instrument_is_refused() -> None:
    bars = _bars(3)
    held = SessionBars()
    for bar in bars:
        held.append(bar)
    with pytest.raises(ValueError, match="does not open after"):
        held.append(bars[1])
    with pytest.raises(ValueError, match="added to the session bars of 7"):
        held.append(_bars(4, token=8)[3])
    assert len(held) == 3


def test_bars_wait_as_objects_until_packed_and_every_read_packs_first() -> None:
    bars = _bars(20)
    held = SessionBars()
    for bar in bars[:10]:
        held.append(bar)
    held.pack()
    for bar in bars[10:]:
        held.append(bar)
    assert len(held) == 20 and held.pending == 10 and held.nbytes == 64 * 67  # ten packed, ten waiting
    assert held.before(T0 + timedelta(minutes=15)) == 15  # a read packs the waiting bars first
    assert held.pending == 0
    for a, b in zip(held.bars(), bars, strict=True):
        _same(a, b)
    held.truncate(12)
    with pytest.raises(ValueError, match="does not open after"):
        held.append(bars[11])  # the newest held is bar 11 again after the truncation
    held.append(bars[12])
    assert [b.time for b in held.bars()] == [b.time for b in bars[:13]]


def test_an_empty_session_reads_nothing() -> None:
    held = SessionBars()
    assert len(held) == 0 and held.bars() == [] and held.before(T0) == 0
    assert held.candles(-5, 0) == []


def test_a_days_bars_as_columns_take_under_a_third_of_the_memory_of_the_objects() -> None:
    """375 bars: the columns (their capacity, 512 bars) against the Bar, Candle, datetime and boxed numbers."""
    bars = _bars(375)
    held = SessionBars()
    for bar in bars:
        held.append(bar)
    held.pack()
    objects = sum(
        sys.getsizeof(x)
        for b in bars
        for x in (b, b.candle, b.candle.time, b.candle.open, b.candle.high, b.candle.low, b.candle.close)
    ) + sum(sys.getsizeof(b.candle.volume) + sys.getsizeof(b.obi_5) for b in bars)
    assert held.nbytes == 512 * 67
    # 67 bytes a bar against about 356 for the objects; nothing else grows with the bars held.
    assert 3 * (held.nbytes + sys.getsizeof(held)) < objects
    assert held.pending == 0


def test_the_engine_packs_each_instruments_session_bars_after_its_signals_a_sixteenth_each_minute() -> None:
    from test_live_engine_deferred import HIST, TOKENS, _minutes, _recording

    from tickwise.core.features.calculator import FeatureCalculator
    from tickwise.pipelines.live.session_bars import PACK_EVERY

    calc = FeatureCalculator()
    bars, frames = _minutes()
    engine = _recording(calc, [])
    for t, f in frames.items():
        engine.open_instrument(t, f.iloc[:HIST])
    states = [engine._states[t] for t in TOKENS]
    assert sorted(s.pack_phase for s in states) == list(range(len(TOKENS)))  # staggered by opening order
    minutes = 2 * PACK_EVERY
    for minute in range(minutes):
        engine.process_many([bars[t][minute] for t in TOKENS], 0.0, defer=True)
        assert all(s.session.pending >= 1 for s in states)  # the hot path only appends ...
        engine.settle()  # ... the deferred part packs, each instrument in its own minutes
        assert all(s.session.pending < PACK_EVERY for s in states)
        assert sum(s.session.pending == 0 for s in states) <= 1
    for t, state in zip(TOKENS, states, strict=True):
        assert len(state.session) == minutes and state.session.pending < PACK_EVERY
        held = engine.session_bars(t)
        assert repr(held) == repr(tuple(bars[t][:minutes]))  # field for field (NaN obi_5 included)


def test_the_engines_push_keeps_the_bar_without_the_checks_and_reads_the_same() -> None:
    bars = _bars(10, one_source=True)
    held = SessionBars()
    for bar in bars:
        held.push(bar)
    assert held.pending == 10
    with pytest.raises(ValueError, match="does not open after"):
        held.append(bars[3])  # append still checks against the newest pushed
    assert repr(tuple(held.bars())) == repr(tuple(bars))
