from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tickwise.core.aggregation import RollupBuilder, aggregate_candles
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.frames import candles_to_frame

DAY = date(2025, 1, 6)


def at(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def one_minute(
    token: int, t: datetime, o: float, h: float, low: float, c: float, v: int, oi: int | None = None
) -> Candle:
    return Candle(token, Timeframe.M1, t, o, h, low, c, v, oi, "live")


def frame_of(candles: list[Candle]) -> pd.DataFrame:
    return candles_to_frame(candles)


EXAMPLE = [
    one_minute(1, at(9, 15), 100, 101, 99, 100.5, 10, 7),
    one_minute(1, at(9, 16), 100.5, 103, 100, 102, 20, 8),
    # 09:17 and 09:18 missing
    one_minute(1, at(9, 19), 102, 102, 98, 98.5, 5, 9),
    one_minute(1, at(9, 20), 98.5, 99, 97, 97.5, 1, 10),
    one_minute(1, at(9, 24), 97.5, 100, 97.5, 99, 2, 11),
    one_minute(1, at(15, 29), 110, 111, 109, 110, 3, 12),
]


def test_five_minute_aggregation_matches_a_hand_made_example() -> None:
    out = aggregate_candles(frame_of(EXAMPLE), Timeframe.M5)
    assert list(out.columns) == list(frame_of(EXAMPLE).columns)
    rows = [
        (r.time, r.open, r.high, r.low, r.close, r.volume, r.oi, r.timeframe)
        for r in out.itertuples(index=False)
    ]
    assert rows == [
        (pd.Timestamp(at(9, 15)), 100, 103, 98, 98.5, 35, 9, "5m"),
        (pd.Timestamp(at(9, 20)), 98.5, 100, 97, 99, 3, 11, "5m"),
        (pd.Timestamp(at(15, 25)), 110, 111, 109, 110, 3, 12, "5m"),
    ]


def test_sixty_minute_buckets_start_at_09_15_and_the_last_is_partial() -> None:
    out = aggregate_candles(frame_of(EXAMPLE), Timeframe.M60)
    assert [t.strftime("%H:%M") for t in out["time"]] == ["09:15", "15:15"]
    assert out["volume"].tolist() == [38, 3]


def test_day_candle_is_stamped_at_midnight_ist() -> None:
    out = aggregate_candles(frame_of(EXAMPLE), Timeframe.D1)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["time"] == pd.Timestamp(datetime(2025, 1, 6, tzinfo=IST))
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (100, 111, 97, 110, 41)


def test_aggregation_keeps_the_input_time_zone_and_handles_utc_input() -> None:
    frame = frame_of(EXAMPLE)
    utc = frame.assign(time=frame["time"].dt.tz_convert("UTC")).drop(columns=["source", "timeframe"])
    out = aggregate_candles(utc, Timeframe.M15)
    assert str(out["time"].dt.tz) == "UTC"
    assert out["time"].iloc[0] == pd.Timestamp("2025-01-06 03:45", tz="UTC")
    assert "timeframe" not in out


def test_rows_outside_the_session_are_dropped_and_duplicates_keep_the_first() -> None:
    candles = [
        one_minute(1, at(9, 10), 1, 1, 1, 1, 1000),
        one_minute(1, at(9, 15), 100, 101, 99, 100, 10),
        one_minute(1, at(9, 15), 500, 501, 499, 500, 99),
        one_minute(1, at(15, 30), 1, 1, 1, 1, 1000),
    ]
    out = aggregate_candles(frame_of(candles), Timeframe.M5)
    assert out[["open", "volume"]].values.tolist() == [[100, 10]]


def test_instruments_are_aggregated_separately_and_sorted() -> None:
    candles = [one_minute(2, at(9, 15), 5, 5, 5, 5, 1), *EXAMPLE[:2], one_minute(2, at(9, 16), 6, 6, 6, 6, 1)]
    out = aggregate_candles(frame_of(candles), Timeframe.M5)
    assert out[["instrument_token", "open", "close", "volume"]].values.tolist() == [
        [1, 100, 102, 30],
        [2, 5, 6, 2],
    ]


def test_chunked_aggregation_equals_single_pass() -> None:
    rng = np.random.default_rng(7)
    candles = []
    for token in (1, 2, 3):
        for day in (date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)):
            for m in sorted(rng.choice(375, size=120, replace=False)):
                t = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST) + timedelta(minutes=int(m))
                p = float(rng.integers(100, 200))
                candles.append(one_minute(token, t, p, p + 1, p - 1, p, int(rng.integers(0, 100))))
    frame = frame_of(candles).sample(frac=1.0, random_state=1)
    for tf in (Timeframe.M5, Timeframe.M60, Timeframe.D1):
        whole = aggregate_candles(frame, tf)
        chunked = aggregate_candles(frame, tf, chunk_rows=50, chunk_days=1)
        pd.testing.assert_frame_equal(whole, chunked)


def test_empty_frame_aggregates_to_an_empty_frame() -> None:
    out = aggregate_candles(frame_of([]), Timeframe.M5)
    assert out.empty


def test_naive_times_are_refused() -> None:
    frame = frame_of(EXAMPLE)
    frame["time"] = frame["time"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="tz-aware"):
        aggregate_candles(frame, Timeframe.M5)


def test_rollup_closes_a_bucket_on_its_last_minute() -> None:
    r = RollupBuilder([Timeframe.M5])
    assert r.on_candle(one_minute(1, at(9, 15), 1, 2, 1, 2, 1)) == []
    [closed] = r.on_candle(one_minute(1, at(9, 19), 2, 3, 2, 3, 1))
    assert (closed.time, closed.close, closed.volume, closed.timeframe) == (at(9, 15), 3, 2, Timeframe.M5)


def test_rollup_closes_a_bucket_when_a_later_bucket_starts() -> None:
    r = RollupBuilder([Timeframe.M5, Timeframe.M15])
    r.on_candle(one_minute(1, at(9, 16), 1, 2, 1, 2, 1))
    closed = r.on_candle(one_minute(1, at(9, 31), 2, 3, 2, 3, 1))
    assert [(c.timeframe, c.time) for c in closed] == [(Timeframe.M5, at(9, 15)), (Timeframe.M15, at(9, 15))]


def test_rollup_timer_closes_after_grace_and_later_minutes_are_late() -> None:
    r = RollupBuilder([Timeframe.M5], grace_s=2.0)
    r.on_candle(one_minute(1, at(9, 16), 1, 2, 1, 2, 1))
    assert r.on_clock(at(9, 20) + timedelta(seconds=1)) == []
    [closed] = r.on_clock(at(9, 20) + timedelta(seconds=2))
    assert closed.time == at(9, 15)
    assert r.on_candle(one_minute(1, at(9, 19), 9, 9, 9, 9, 1)) == []
    assert r.late_candles == 1


def test_rollup_drops_repeated_minutes_as_late() -> None:
    r = RollupBuilder([Timeframe.M5])
    r.on_candle(one_minute(1, at(9, 16), 1, 2, 1, 2, 1))
    assert r.on_candle(one_minute(1, at(9, 16), 5, 5, 5, 5, 100)) == []
    assert r.late_candles == 1
    [closed] = r.flush()
    assert closed.volume == 1


def test_rollup_closes_the_day_and_the_partial_hour_at_15_29() -> None:
    r = RollupBuilder()
    r.on_candle(one_minute(1, at(15, 20), 1, 2, 1, 2, 1))
    closed = r.on_candle(one_minute(1, at(15, 29), 2, 3, 2, 3, 1))
    assert sorted((c.timeframe.value, c.time.strftime("%H:%M")) for c in closed) == [
        ("15m", "15:15"),
        ("1d", "00:00"),
        ("5m", "15:20"),
        ("5m", "15:25"),
        ("60m", "15:15"),
    ]


def test_live_rollup_equals_batch_aggregation_on_the_example() -> None:
    r = RollupBuilder()
    live: list[Candle] = []
    for c in EXAMPLE:
        live.extend(r.on_candle(c))
    live.extend(r.flush())
    for tf in (Timeframe.M5, Timeframe.M15, Timeframe.M60, Timeframe.D1):
        batch = aggregate_candles(frame_of(EXAMPLE), tf)
        got = frame_of([c for c in live if c.timeframe is tf])
        pd.testing.assert_frame_equal(got.reset_index(drop=True), batch, check_dtype=False)


def test_rollup_refuses_a_one_minute_target() -> None:
    with pytest.raises(ValueError):
        RollupBuilder([Timeframe.M1])
