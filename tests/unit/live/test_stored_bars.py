"""The engine's compact stored history gives back exactly the candles it was given, in less memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.domain.candle import CANDLE_FRAME_COLUMNS
from tickwise.pipelines.live.engine import history_candles
from tickwise.pipelines.live.stored_bars import IntColumn, StoredBars

TOKEN = 408065
T0 = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)


def repository_frame(n: int) -> pd.DataFrame:
    """Shaped as ``TimescaleCandleRepository.read_frame`` returns it (object strings, nullable oi)."""
    rng = np.random.default_rng(5)
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    frame = pd.DataFrame(
        {
            "instrument_token": np.full(n, TOKEN, dtype=np.int64),
            "timeframe": ["1" + "m" for _ in range(n)],  # one str per row, as asyncpg decodes them
            "time": pd.to_datetime([T0 + timedelta(minutes=i) for i in range(n)], utc=True),
            "open": close + rng.normal(0, 0.05, n),
            "high": close + 0.3,
            "low": close - 0.3,
            "close": close,
            "volume": rng.integers(1, 10_000, n).astype(np.int64),
            "oi": pd.array([None if i % 3 else 10_000 + i for i in range(n)], dtype="Int64"),
            "source": ["histor" + "ical" if i < n - 5 else "li" + "ve" for i in range(n)],
            "obi_5": np.where(np.arange(n) % 2 == 0, np.nan, rng.uniform(-1, 1, n)),
        }
    )
    assert list(frame.columns)[: len(CANDLE_FRAME_COLUMNS)] == list(CANDLE_FRAME_COLUMNS)
    return frame


def test_the_frame_given_back_holds_the_very_values_the_stream_reads() -> None:
    frame = repository_frame(400)
    bars = StoredBars.of(frame)
    back = bars.frame()
    for col in ("open", "high", "low", "close", "volume", "obi_5"):
        np.testing.assert_array_equal(back[col].to_numpy(), frame[col].to_numpy())  # NaN == NaN here
        assert back[col].dtype == frame[col].dtype
    assert back["time"].equals(frame["time"])
    assert back["oi"].equals(frame["oi"]) and back["source"].tolist() == frame["source"].tolist()


def test_a_prefix_ends_before_the_given_instant() -> None:
    bars = StoredBars.of(repository_frame(50))
    cut = T0 + timedelta(minutes=20)
    assert bars.before(cut) == 20 and bars.before(cut + timedelta(seconds=1)) == 21
    assert bars.frame(bars.before(cut))["time"].iloc[-1] == pd.Timestamp(cut - timedelta(minutes=1))
    assert bars.last_time() == T0 + timedelta(minutes=49)


def test_candles_equal_the_ones_built_from_the_full_frame() -> None:
    frame = repository_frame(120)
    bars = StoredBars.of(frame)
    assert bars.candles(TOKEN, 0, 120) == history_candles(TOKEN, frame)
    assert bars.candles(TOKEN, -5, 3) == history_candles(TOKEN, frame.head(3))


def test_an_empty_history_stays_empty() -> None:
    bars = StoredBars.of(
        pd.DataFrame(columns=["time", "open", "high", "low", "close", "volume", "oi", "obi_5"])
    )
    assert len(bars) == 0 and bars.last_time() is None and bars.frame().empty
    assert bars.candles(TOKEN, 0, 0) == []


def test_the_compact_history_holds_a_third_of_the_repository_frame_or_less() -> None:
    frame = repository_frame(1500)
    held = StoredBars.of(frame).nbytes
    assert held <= 66 * 1500
    assert held * 3 <= frame.memory_usage(deep=True).sum()


def rest_frame(n: int) -> pd.DataFrame:
    """REST history as the repository returns it: prices on the 0.05 tick grid, no oi, no book."""
    frame = repository_frame(n)
    rng = np.random.default_rng(8)
    ticks = 20_000 + np.cumsum(rng.integers(-3, 4, n))  # in 0.05 steps
    for col, shift in (("open", 0), ("high", 4), ("low", -4), ("close", 1)):
        frame[col] = (ticks + shift) / 20  # the double nearest each decimal price, as Postgres stores it
    frame["oi"] = pd.array([None] * n, dtype="Int64")
    frame["obi_5"] = np.nan
    return frame


def _assert_same(back: pd.DataFrame, frame: pd.DataFrame) -> None:
    for col in ("open", "high", "low", "close", "volume", "obi_5"):
        got, want = back[col].to_numpy(), frame[col].to_numpy()
        assert back[col].dtype == frame[col].dtype, col
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), col  # the very bits
    assert back["time"].equals(frame["time"])
    assert back["oi"].equals(frame["oi"]) and back["source"].tolist() == frame["source"].tolist()


def test_rest_history_is_held_in_about_14_bytes_a_bar_and_given_back_bit_for_bit() -> None:
    frame = rest_frame(1500)
    frame["source"] = "historical"  # REST history: one source
    bars = StoredBars.of(frame)
    # minutes and prices as int16 steps (2 + 4 x 2 bytes), volume int16 (below 10,000), no source codes
    assert bars.nbytes <= 12 * 1500
    _assert_same(bars.frame(), frame)
    assert bars.candles(TOKEN, 1400, 1500) == history_candles(TOKEN, frame.iloc[1400:])


def test_values_the_narrow_forms_cannot_hold_exactly_stay_float64_and_exact() -> None:
    frame = rest_frame(300)
    frame.loc[7, "close"] = 1000.0 + 1e-9  # not a whole number of paise
    frame.loc[8, "high"] = 3e8  # whole paise, but beyond int32 paise
    frame.loc[9, "low"] = -0.0  # a zero whose sign int32 would lose
    frame.loc[12, "open"] = 20_003 * 0.05  # one rounding off the nearest double of 1000.15
    frame["volume"] = frame["volume"].astype(np.float64)  # a frame of floats keeps its dtype
    frame.loc[10, "volume"] = 2.0**40
    frame["time"] = frame["time"] + pd.to_timedelta(np.arange(300) % 2, unit="s")  # not whole minutes
    bars = StoredBars.of(frame)
    _assert_same(bars.frame(), frame)
    assert bars.before(frame["time"].iloc[11].to_pydatetime()) == 11


def test_nothing_of_the_repository_frame_is_kept_alive_by_a_view() -> None:
    frame = rest_frame(200)
    bars = StoredBars.of(frame)
    held = [bars.offsets.data, bars.volume_other] + [
        a
        for a in (
            bars.volume.data if bars.volume is not None else None,
            bars.source_codes,
            *(p.data for p in (bars.open, bars.high, bars.low, bars.close, bars.oi, bars.obi_5)),
        )
        if a is not None
    ]
    for col in frame.columns:
        values = frame[col].to_numpy()
        if values.dtype != object:
            assert not any(np.shares_memory(a, values) for a in held), col


def test_an_integer_column_is_held_as_its_steps_when_they_are_narrower_and_given_back_exactly() -> None:
    rng = np.random.default_rng(3)
    prices = 2_000_000 + np.cumsum(rng.integers(-400, 401, 20_000))  # paise: int32 values, int16 steps
    held = IntColumn.of(prices)
    assert held is not None and held.steps and held.data.dtype == np.int16
    assert np.array_equal(held.values(), prices) and np.array_equal(held.values(7), prices[:7])
    assert np.array_equal(held.slice(5, 9), prices[5:9])
    small = IntColumn.of(np.array([3, 100, -7]))  # values already int8: held as they are
    assert small is not None and not small.steps and small.data.dtype == np.int8
    assert IntColumn.of(np.array([0, 2**40])) is None  # neither the values nor the step fit int32
    wide = IntColumn.wide(np.array([0, 2**40, 2**41]))
    assert wide.data.dtype == np.int64 and np.array_equal(wide.values(), [0, 2**40, 2**41])


def test_sixty_sessions_of_rest_history_are_held_in_about_14_bytes_a_bar() -> None:
    """The live engine opens on every stored bar from the anchor (60 sessions is 22,500 bars): the
    minutes between sessions (overnight, weekends) still fit int16 steps."""
    days = pd.bdate_range("2026-01-05", periods=60)
    opens = (days + pd.Timedelta(hours=3, minutes=45)).tz_localize("UTC")
    times = pd.DatetimeIndex(
        np.concatenate([(o + pd.to_timedelta(np.arange(375), unit="min")).asi8 for o in opens])
    )
    n = len(times)
    frame = rest_frame(n)
    frame["time"] = pd.to_datetime(times.asi8, utc=True)
    frame["source"] = "historical"
    bars = StoredBars.of(frame)
    assert bars.nbytes <= 12 * n
    _assert_same(bars.frame(), frame)
    assert bars.before(frame["time"].iloc[9000].to_pydatetime()) == 9000
