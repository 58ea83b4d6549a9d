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


def _session_frames(seed: int, instruments: int) -> dict[int, pd.DataFrame]:
    universe = Universe(instruments + 1, NSE, today=date(2026, 11, 30))
    market = Market(universe, seed=seed, bad_prints=0.01)
    frames = {}
    for equity in universe.equities[:instruments]:
        token = equity.instrument.instrument_token
        rows = market.candles(
            token,
            1,
            datetime.combine(DAYS[0], time(0), tzinfo=IST),
            datetime.combine(DAYS[-1], time(23), tzinfo=IST),
            datetime(2030, 1, 1, tzinfo=IST),
        )
        frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
        frame["time"] = pd.to_datetime(frame["time"]).dt.tz_convert("UTC")
        frames[token] = frame
    return frames


def test_minute_batches_of_several_instruments_give_the_batch_flags_row_for_row_across_a_new_week() -> None:
    # History to midday Thursday 15 Oct; live: the rest of that week and Monday 19 Oct's first 120 bars,
    # so the live side fits one week's models before the session (prepare) and the next week's at its
    # first bar from sessions it recorded itself.
    frames = _session_frames(seed=12, instruments=3)
    config = CandleCheckConfig(anomaly_threshold=0.5)
    cut = pd.Timestamp(datetime.combine(DAYS[8], time(12, 0), tzinfo=IST)).tz_convert("UTC")
    end = pd.Timestamp(datetime.combine(DAYS[10], time(11, 15), tzinfo=IST)).tz_convert("UTC")
    checker = LiveCandleChecker(config)
    expected = []
    bars: list[Bar] = []
    for token, frame in frames.items():
        frame = frame[frame["time"] < end]
        batch = with_actions(flag_candles(frame, config, instrument_token=token), config)
        expected.append(batch[batch["time"] >= cut])
        checker.seed(token, frame[frame["time"] < cut])
        bars.extend(_bar(token, row) for _, row in frame[frame["time"] >= cut].iterrows())
    assert checker.prepare(DAYS[8]) == 3
    fits_before = checker.state.fits
    by_minute: dict[datetime, list[Bar]] = {}
    for b in bars:
        by_minute.setdefault(b.time, []).append(b)
    live = [checker.check_minute(by_minute[t]) for t in sorted(by_minute)]
    got = pd.concat([f for f in live if len(f)], ignore_index=True)
    want = pd.concat(expected, ignore_index=True)
    key = ["instrument_token", "time", "check"]
    got = got.sort_values(key, kind="stable").reset_index(drop=True)
    want = want.sort_values(key, kind="stable").reset_index(drop=True)
    assert {"anomaly", "wick_iqr", "zero_volume"} <= set(want["check"])  # the rules and the model
    assert want["time"].dt.tz_convert(IST).dt.date.max() == DAYS[10]
    assert checker.state.fits == fits_before + 3  # Monday's models: fitted once per instrument
    assert got[[*key, "action"]].astype(str).equals(want[[*key, "action"]].astype(str))
    assert got["score"].to_numpy().tolist() == want["score"].to_numpy().tolist()


def test_a_bar_checked_twice_in_one_call_is_flagged_once() -> None:
    frame, token = _frame()
    checker = LiveCandleChecker(CandleCheckConfig(anomaly=False))
    bars = [_bar(token, row) for _, row in frame.head(200).iterrows()]
    once = checker.check_minute(bars)
    again = LiveCandleChecker(CandleCheckConfig(anomaly=False)).check_minute(bars + bars[150:])
    assert len(once) > 0 and once.equals(again)
    assert checker.check_minute(bars[-5:]).empty


def test_more_instruments_than_the_first_allocation_keep_their_own_windows() -> None:
    from tickwise.bench.checks import session_days, synthetic_session_candles

    config = CandleCheckConfig(anomaly=False)
    days = session_days(1)
    checker = LiveCandleChecker(config)
    frames = {token: synthetic_session_candles(days, seed=token, bad_every=40) for token in range(1, 21)}
    for token, frame in frames.items():  # 20 instruments: the state grows past its first 16 rows
        checker.seed(token, frame.iloc[:375])
    want = []
    for token, frame in frames.items():
        flags = with_actions(flag_candles(frame, config, instrument_token=token), config)
        want.append(flags[flags["time"] >= frame["time"].iloc[375]])
    live = [
        checker.check_minute([_bar(token, frame.iloc[375 + m]) for token, frame in frames.items()])
        for m in range(375)
    ]
    key = ["instrument_token", "time", "check"]
    got = pd.concat([f for f in live if len(f)], ignore_index=True)
    got = got.sort_values(key, kind="stable").reset_index(drop=True)
    expected = pd.concat([f for f in want if len(f)], ignore_index=True)
    expected = expected.sort_values(key, kind="stable").reset_index(drop=True)
    assert len(expected) > 20
    assert got[[*key, "action"]].astype(str).equals(expected[[*key, "action"]].astype(str))
    assert got["score"].tolist() == expected["score"].tolist()


def test_anomaly_models_fitted_in_a_child_process_flag_exactly_as_models_fitted_here() -> None:
    from tickwise.bootstrap.context import fit_in_child

    frame, token = _frame()
    frame = frame[frame["time"].dt.tz_convert(IST).dt.date <= DAYS[7]].iloc[: 7 * 375 + 60]
    config = CandleCheckConfig(anomaly_threshold=0.5)
    split = frame["time"].dt.tz_convert(IST).dt.date >= DAYS[7]
    here, there = LiveCandleChecker(config), LiveCandleChecker(config, fit_many=fit_in_child)
    for checker in (here, there):
        checker.seed(token, frame[~split])
        assert checker.prepare(DAYS[7]) == 1
    assert there.state.fits == here.state.fits == 1  # prepared: no bar of the session fits again
    bars = [_bar(token, row) for _, row in frame[split].iterrows()]
    got, want = there.check_minute(bars), here.check_minute(bars)
    assert "anomaly" in set(want["check"])
    pd.testing.assert_frame_equal(got, want)  # the same scores, bit for bit (no tolerance)
    assert there.state.fits == 1
