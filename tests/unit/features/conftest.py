"""Synthetic multi-session 1m candles (09:15-15:29 IST, weekdays) for the feature tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tickwise.core.features.calculator import FeatureCalculator

SESSION_BARS = 375


def make_candles(
    n_bars: int, seed: int = 7, start: str = "2024-01-01", drop_every: int = 0, with_obi: bool = True
) -> pd.DataFrame:
    """A geometric random walk on NSE session minutes; ``drop_every`` > 0 removes every k-th minute."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=n_bars // SESSION_BARS + 2)
    minutes = np.arange(SESSION_BARS)
    opens = [
        pd.Timestamp(d.date()).tz_localize("Asia/Kolkata") + pd.Timedelta(hours=9, minutes=15) for d in days
    ]
    times = pd.DatetimeIndex(
        np.concatenate([(o + pd.to_timedelta(minutes, unit="m")).tz_convert(None).to_numpy() for o in opens])
    ).tz_localize("UTC")
    if drop_every:
        keep = (np.arange(len(times)) % drop_every) != drop_every - 1
        times = times[keep]
    times = times[:n_bars].tz_convert("Asia/Kolkata")
    n = len(times)
    # Volatility clusters and an intraday U-shaped volume make the series less toy-like.
    vol = 4e-4 * np.exp(np.cumsum(rng.normal(0, 0.02, n)).clip(-1, 1))
    close = 1500.0 * np.exp(np.cumsum(rng.standard_t(5, n) * vol / 1.3))
    prev = np.r_[close[0], close[:-1]]
    opn = prev * np.exp(rng.normal(0, 1e-4, n))
    high = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0, 3e-4, n)))
    low = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0, 3e-4, n)))
    minute = (times.hour * 60 + times.minute - 555).to_numpy()
    u_shape = 1.0 + 2.0 * ((minute - 187) / 187.0) ** 2
    volume = np.round(rng.gamma(2.0, 800.0, n) * u_shape) + 1.0
    frame = pd.DataFrame(
        {"time": times, "open": opn, "high": high, "low": low, "close": close, "volume": volume}
    )
    frame["oi"] = 0.0
    if with_obi:
        frame["obi_5"] = np.tanh(rng.normal(0, 0.5, n))
    return frame


@pytest.fixture(scope="session")
def candle_factory() -> Callable[..., pd.DataFrame]:
    return make_candles


@pytest.fixture(scope="session")
def calculator() -> FeatureCalculator:
    return FeatureCalculator()


@pytest.fixture(scope="session")
def candles_20k() -> pd.DataFrame:
    return make_candles(20_000)


@pytest.fixture(scope="session")
def features_20k(calculator: FeatureCalculator, candles_20k: pd.DataFrame) -> pd.DataFrame:
    return calculator.compute(candles_20k)


def context_series(candles: pd.DataFrame, minutes: int) -> tuple[pd.DataFrame, np.ndarray]:
    """An independent pandas aggregation of ``candles`` into ``minutes``-minute context bars, gaps
    included: session-aligned buckets (09:15 IST, the last one cut at 15:30), each closed by its last
    minute's candle or, when that minute is missing, by the first later candle. Returns the closed
    bars in order and, per bar, the row of the 1m candle from which it is usable (a bucket still open
    at the end of the history is left out)."""
    t = candles["time"].dt.tz_convert("Asia/Kolkata")
    day = t.dt.normalize()
    since_open = (t - day - pd.Timedelta(hours=9, minutes=15)) // pd.Timedelta(minutes=1)
    start = day + pd.Timedelta(hours=9, minutes=15) + pd.to_timedelta((since_open // minutes) * minutes, "m")
    end = np.minimum(start + pd.Timedelta(minutes=minutes), day + pd.Timedelta(hours=15, minutes=30))
    g = candles.assign(bucket=start, end=end, row=np.arange(len(candles))).groupby("bucket", sort=True)
    bars = g.agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
        volume=("volume", "sum"), last_time=("time", "last"), end=("end", "first"), row=("row", "last"),
    )  # fmt: skip
    on_time = (bars["last_time"] + pd.Timedelta(minutes=1) >= bars["end"]).to_numpy()
    last_row = bars["row"].to_numpy()
    usable = np.where(on_time, last_row, last_row + 1)  # late: the next candle proves the bucket over
    keep = usable < len(candles)
    return bars[keep], usable[keep]


@pytest.fixture(scope="session")
def context_oracle() -> Callable[[pd.DataFrame, int], tuple[pd.DataFrame, np.ndarray]]:
    return context_series
