"""Property: the streaming RollupBuilder (what the live engine runs) emits exactly what batch aggregation computes."""

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
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


def _minute_waves(seed: int) -> tuple[list[list[Candle]], list[Candle], int, int]:
    """Several instruments over three sessions with a weekend between (gaps: about a third of the minutes
    missing, whole hours of one instrument, the last minutes of a day), grouped into one wave per minute
    as the live engine folds them. Each later wave may carry a late bar (a minute before the instrument's
    newest, never sent) or a repeated one, and a few bars fall outside the session. Returns the waves,
    the candles batch aggregation must see, and the late and outside counts."""
    rng = np.random.default_rng(seed)
    days = NSE.trading_days(date(2025, 1, 9), date(2025, 1, 13))  # Thu, Fri, Mon
    tokens = [101, 202, 303, 404, 505]
    waves: list[list[Candle]] = []
    kept: list[Candle] = []
    sent: dict[int, list[datetime]] = {t: [] for t in tokens}
    skipped: dict[int, list[datetime]] = {t: [] for t in tokens}
    late = outside = 0
    for day in days:
        open_ = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST)
        quiet = {int(rng.integers(0, 5)): int(rng.integers(0, 6))}  # instrument -> its silent hour
        for m in range(-3, 378):  # three minutes either side of the session are outside it
            t = open_ + timedelta(minutes=m)
            wave = []
            for token in rng.permutation(tokens).tolist():
                inside = 0 <= m < 375
                if inside and (rng.random() < 0.3 or quiet.get(tokens.index(token)) == m // 60):
                    skipped[token].append(t)
                    continue
                if not inside and rng.random() < 0.7:
                    continue
                o, c, a, b = (float(v) for v in np.round(rng.uniform(90, 110, 4), 2))
                oi = None if rng.random() < 0.5 else int(rng.integers(0, 1000))
                candle = Candle(token, Timeframe.M1, t, o, max(o, c, a, b), min(o, c, a, b), c,
                                int(rng.integers(0, 5000)), oi, "live")  # fmt: skip
                wave.append(candle)
                if inside:
                    kept.append(candle)
                    sent[token].append(t)
                else:
                    outside += 1
            # A late or repeated bar of one instrument, now and then, in the same wave.
            token = tokens[int(rng.integers(0, 5))]
            if sent[token] and rng.random() < 0.1:
                gaps = [g for g in skipped[token] if g < sent[token][-1]]
                again = (
                    gaps[int(rng.integers(0, len(gaps)))] if gaps and rng.random() < 0.5 else sent[token][-1]
                )
                wave.append(Candle(token, Timeframe.M1, again, 1.0, 1.0, 1.0, 1.0, 7, None, "live"))
                late += 1
            if wave:
                waves.append(wave)
    return waves, kept, late, outside


@pytest.mark.interpreted
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_minute_waves_of_many_instruments_roll_up_exactly_as_batch_aggregation(seed: int) -> None:
    waves, kept, late, outside = _minute_waves(seed)
    wave_builder = RollupBuilder(TIMEFRAMES, grace_s=2.0, source="live")
    one_by_one = RollupBuilder(TIMEFRAMES, grace_s=2.0, source="live")
    live: list[Candle] = []
    for wave in waves:
        per_candle = wave_builder.on_candles(wave)
        # The wave's result is, candle for candle, what feeding the same candles one at a time gives.
        assert per_candle == [one_by_one.on_candle(c) for c in wave]
        live.extend(c for closed in per_candle for c in closed)
    live.extend(wave_builder.flush())
    assert (wave_builder.late_candles, wave_builder.outside_session_candles) == (late, outside)
    assert late > 0 and outside > 0

    frame = candles_to_frame(kept)
    for tf in TIMEFRAMES:
        batch = aggregate_candles(frame, tf)
        got = candles_to_frame(
            sorted((c for c in live if c.timeframe is tf), key=lambda c: (c.instrument_token, c.time))
        )
        pd.testing.assert_frame_equal(got, batch, check_dtype=False, check_exact=True)
