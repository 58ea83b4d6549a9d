"""Live candle checks: bar by bar, the same flags as the batch run over the whole history."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time

import pandas as pd

from fakes import InMemoryCandleFlagRepository
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.core.candle_flags import CandleCheckConfig, flag_candles, with_actions
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.live.candle_checks import LiveCandleChecker, checked_candle_sink

DAYS = NSE.trading_days(date(2026, 10, 5), date(2026, 10, 20))


def _frame(seed: int = 11) -> tuple[pd.DataFrame, int]:
    universe = Universe(3, NSE, today=date(2026, 11, 30))
    market = Market(universe, seed=seed, bad_prints=0.01)
    token = universe.equities[0].instrument.instrument_token
    rows = market.candles(
        token,
        1,
        datetime.combine(DAYS[0], time(0), tzinfo=IST),
        datetime.combine(DAYS[-1], time(23), tzinfo=IST),
        datetime(2030, 1, 1, tzinfo=IST),
    )
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_convert("UTC")
    return frame, token


def _bar(token: int, row: pd.Series) -> Bar:
    return Bar(
        Candle(
            token,
            Timeframe.M1,
            row["time"].to_pydatetime(),
            float(row["open"]),
            float(row["high"]),
            float(row["low"]),
            float(row["close"]),
            int(row["volume"]),
            source="live",
        )
    )


def test_live_flags_bar_by_bar_equal_the_batch_flags_including_the_anomaly_model() -> None:
    frame, token = _frame()
    # Seven sessions of history, then the first 150 bars of the eighth live (keeps the test quick).
    frame = frame[frame["time"].dt.tz_convert(IST).dt.date <= DAYS[7]].iloc[: 7 * 375 + 150]
    config = CandleCheckConfig(anomaly_threshold=0.5)
    batch = with_actions(flag_candles(frame, config, instrument_token=token), config)
    split = frame["time"].dt.tz_convert(IST).dt.date >= DAYS[7]
    checker = LiveCandleChecker(config)
    checker.seed(token, frame[~split])
    live = [checker.check(_bar(token, row)) for _, row in frame[split].iterrows()]
    got = pd.concat([f for f in live if len(f)], ignore_index=True)
    expected = batch[batch["time"] >= frame.loc[split, "time"].iloc[0]].reset_index(drop=True)
    key = ["time", "check"]
    got = got.sort_values(key, kind="stable").reset_index(drop=True)
    assert "anomaly" in set(expected["check"])  # the comparison covers the model, not only the rules
    assert got[[*key, "action"]].equals(expected[[*key, "action"]])
    pd.testing.assert_series_equal(got["score"], expected["score"], check_names=False, atol=1e-9)


def test_the_sink_stores_each_flag_once_even_when_the_writer_retries_the_batch() -> None:
    frame, token = _frame()
    hooks = RecordingHooks()
    checker = LiveCandleChecker(CandleCheckConfig(anomaly=False), hooks=hooks)
    repo = InMemoryCandleFlagRepository()
    written: list[int] = []
    failures = [1]

    async def candles(rows: list[Bar]) -> int:
        if failures:
            failures.pop()
            raise ConnectionError("database down")
        written.append(len(rows))
        return len(rows)

    sink = checked_candle_sink(candles, checker, repo)
    bars = [_bar(token, row) for _, row in frame.head(300).iterrows()]

    async def run() -> None:
        try:
            await sink(bars)
        except ConnectionError:
            await sink(bars)  # the writer's retry of the same batch

    asyncio.run(run())
    stored = asyncio.run(repo.read_frame(token, Timeframe.M1))
    assert written == [300] and len(stored) > 0
    assert sum(args[2] for args in hooks.of("on_candles_flagged")) == len(stored)
