"""Property: the streaming RollupBuilder (what the live engine runs) emits exactly what batch aggregation computes."""

from datetime import date, datetime, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.aggregation import RollupBuilder, aggregate_candles
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.frames import candles_to_frame

DAYS = NSE.trading_days(date(2025, 1, 6), date(2025, 1, 8))
TIMEFRAMES = (Timeframe.M5, Timeframe.M15, Timeframe.M60, Timeframe.D1)


@st.composite
def minute_candles(draw: st.DrawFn) -> list[Candle]:
    candles = []
    for token in draw(st.sets(st.sampled_from([11, 22, 33]), min_size=1, max_size=3)):
        for day in draw(st.sets(st.sampled_from(DAYS), min_size=1, max_size=2)):
            minutes = draw(st.sets(st.integers(0, 374), min_size=1, max_size=60))
            for m in sorted(minutes):
                t = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST) + timedelta(minutes=m)
                o, c, a, b = (draw(st.integers(1, 10_000)) / 20 for _ in range(4))
                high, low = max(o, c, a, b), min(o, c, a, b)
                volume = draw(st.integers(0, 10_000))
                oi = draw(st.none() | st.integers(0, 1000))
                candles.append(Candle(token, Timeframe.M1, t, o, high, low, c, volume, oi, "live"))
    return candles


@settings(max_examples=60, deadline=None)
@given(candles=minute_candles(), use_clock=st.booleans())
def test_live_rollup_equals_batch_aggregation(candles: list[Candle], use_clock: bool) -> None:
    rollup = RollupBuilder(TIMEFRAMES, grace_s=2.0)
    live: list[Candle] = []
    ordered = sorted(candles, key=lambda c: (c.time, c.instrument_token))
    for i, candle in enumerate(ordered):
        live.extend(rollup.on_candle(candle))
        last_of_minute = i + 1 == len(ordered) or ordered[i + 1].time != candle.time
        if use_clock and last_of_minute:
            # The 1m builder hands out a minute's candles at minute end + grace.
            live.extend(rollup.on_clock(candle.time + timedelta(minutes=1, seconds=2)))
    live.extend(rollup.flush())
    assert rollup.late_candles == 0

    frame = candles_to_frame(candles)
    for tf in TIMEFRAMES:
        batch = aggregate_candles(frame, tf)
        got = candles_to_frame(
            sorted((c for c in live if c.timeframe is tf), key=lambda c: (c.instrument_token, c.time))
        )
        pd.testing.assert_frame_equal(got, batch, check_dtype=False, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(candles=minute_candles(), split=st.floats(0.0, 1.0))
def test_a_rollup_restored_mid_stream_ends_like_an_uninterrupted_one(
    candles: list[Candle], split: float
) -> None:
    """A restart (or a rewind) re-opens the buckets on the candles before it: nothing is lost or doubled."""
    ordered = sorted(candles, key=lambda c: (c.time, c.instrument_token))
    k = int(split * len(ordered))
    before, after = ordered[:k], ordered[k:]
    first = RollupBuilder(TIMEFRAMES, grace_s=2.0)
    live: list[Candle] = []
    for candle in before:
        live.extend(first.on_candle(candle))
    # What the first builder still had open is lost with it (the process died) ...
    restarted = RollupBuilder(TIMEFRAMES, grace_s=2.0)
    for token in {c.instrument_token for c in before}:
        restarted.restore(token, [c for c in before if c.instrument_token == token])
    # ... and re-opened by the restored one, which emits nothing while restoring.
    for candle in after:
        live.extend(restarted.on_candle(candle))
    live.extend(restarted.flush())
    assert restarted.late_candles == 0

    frame = candles_to_frame(candles)
    for tf in TIMEFRAMES:
        batch = aggregate_candles(frame, tf)
        got = candles_to_frame(
            sorted((c for c in live if c.timeframe is tf), key=lambda c: (c.instrument_token, c.time))
        )
        pd.testing.assert_frame_equal(got, batch, check_dtype=False, check_exact=True)
