"""The engine's compact stored history gives back exactly the candles it was given, in less memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.domain.candle import CANDLE_FRAME_COLUMNS
from tickwise.pipelines.live.engine import history_candles
from tickwise.pipelines.live.stored_bars import StoredBars

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
