"""A simulated live session end to end: candles equal the simulator's REST candles, signals equal the
batch (`predict`) signals for the same bars, and a run with scripted feed faults ends with the same
candles and signals as the fault-free run.

One historical run (3 instruments, a few days, quick training) provides the model; each live run is
~20 minutes of market time at 150x.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
from live_support import free_port

from tickwise.adapters.kite.simulator import Market, Universe
from tickwise.bootstrap.historical import open_historical
from tickwise.bootstrap.live import LiveOptions, run_live
from tickwise.config import Settings, load_settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks

pytestmark = [pytest.mark.slow, pytest.mark.db]

SYMBOLS = '["INFY","TCS","RELIANCE"]'
FAULTS = (
    "+3m abort; +6m stall 2s; +8m delay 1s; +9m malformed; +11m reject 1 403; +11m abort; +14m reject 2 500; "
    "+14m close 1011; +16m reorder; +17m duplicate; +18m negative"
)


def make_settings(db_url: str, data: Path) -> Settings:
    env = {
        "TICKWISE__BROKER__SIMULATOR__PORT": str(free_port()),
        "TICKWISE__BROKER__SIMULATOR__WS_PORT": str(free_port()),
        "TICKWISE_DATA_DIR": str(data),
        "DATABASE_URL": db_url,
        "TICKWISE__TRADING__SYMBOLS": SYMBOLS,
        "TICKWISE__TRADING__BACKFILL_DAYS": "5",
        "TICKWISE__MODEL_TRAINING__TRIALS": "1",
        "TICKWISE__MODEL_TRAINING__FOLDS": "2",
        "TICKWISE__MODEL_TRAINING__NUM_BOOST_ROUND": "20",
        "TICKWISE__MONITORING__METRICS_PORT": "0",
        "TICKWISE__LIVE__SPILL_DIR": str(data / "spill"),  # never the checkout's .data/spill
    }
    return load_settings(environ=env, environment="test")


@pytest_asyncio.fixture(loop_scope="session")
async def trained(clean_db: object, db_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings = make_settings(db_url, tmp_path)
    with Reporter(quiet=True) as reporter:
        await run_historical(settings, reporter, url=db_url)
    yield settings


async def live_rows(settings: Settings, db_url: str) -> tuple[pd.DataFrame, pd.DataFrame, datetime]:
    async with open_historical(settings, url=db_url) as ctx:
        signals = await ctx.signals.read_frame(mode="live")
        day0 = signals["time"].min()
        candles = await ctx.candles.read_many(None, Timeframe.M1, day0.to_pydatetime())
    return signals, candles, day0.to_pydatetime()


async def reset_live(db_url: str, settings: Settings, since: datetime) -> None:
    async with open_historical(settings, url=db_url) as ctx, ctx.pool.acquire() as conn:
        await conn.execute("DELETE FROM candles WHERE time >= $1", since)
        await conn.execute("DELETE FROM features WHERE time >= $1", since)
        await conn.execute("DELETE FROM signals WHERE time >= $1", since)
        await conn.execute("TRUNCATE ticks")


async def test_a_live_session_matches_rest_candles_and_batch_signals_even_with_feed_faults(
    trained: Settings, db_url: str
) -> None:
    settings = trained
    report = await run_live(
        settings, LiveOptions(until="+20m", speed=150, url=db_url, metrics=False), hooks=NullHooks()
    )
    assert report.ended_by == "until"
    assert report.signals == report.bars > 0
    signals, candles, day0 = await live_rows(settings, db_url)
    day = day0.astimezone(IST).date()
    tokens = sorted(candles["instrument_token"].unique())
    assert len(tokens) == 3

    # Live 1m candles == the simulator's REST candles, minute for minute.
    market = Market(
        Universe(settings.broker.simulator.instruments, today=day), settings.broker.simulator.seed
    )
    for token in tokens:
        mine = candles[candles["instrument_token"] == token]
        got = [
            (t.to_pydatetime(), o, h, lo, c, int(v))
            for t, o, h, lo, c, v in mine[["time", "open", "high", "low", "close", "volume"]].itertuples(
                index=False
            )
        ]
        rest = market.candles(int(token), 1, got[0][0], got[-1][0], now=got[-1][0] + timedelta(hours=12))
        assert len(got) == 20
        assert got == rest

    # Live signals == `predict` over the same range with the same model, and the features behind
    # them == the batch calculator on the stored candles.
    from tickwise.pipelines.historical.predict import predict_signals

    async with open_historical(settings, url=db_url) as ctx:
        end = day0 + timedelta(hours=7)
        await predict_signals(ctx, start=day0, end=end)
        batch = await ctx.signals.read_frame(day0, end, mode="historical")
        calc = FeatureCalculator()
        for token in tokens:
            history = await ctx.candles.read_frame(int(token), Timeframe.M1)
            expected = calc.compute(history).set_index("time")
            stored = await ctx.features.read_frame(int(token), Timeframe.M1, calc.feature_set, day0, end)
            stored = stored.set_index("time")
            exp = expected.loc[stored.index, calc.names].to_numpy()
            np.testing.assert_array_equal(stored[calc.names].to_numpy(), exp)
    key = ["instrument_token", "time"]
    merged = signals.merge(batch, on=key, suffixes=("_live", "_batch"))
    assert len(merged) == len(signals) == len(batch)
    assert (merged["direction_live"] == merged["direction_batch"]).all()
    assert np.abs(merged["confidence_live"] - merged["confidence_batch"]).max() <= 1e-9
    for col in ("meta_prob", "meta_size"):  # meta-labeling: the same bits (NaN without a meta size)
        np.testing.assert_array_equal(
            merged[f"{col}_live"].to_numpy(dtype=np.float64),
            merged[f"{col}_batch"].to_numpy(dtype=np.float64),
        )
    assert signals["latency_ms"].notna().all()
    clean_signals, clean_candles = signals.copy(), candles.copy()

    # The same session with scripted faults: no missing or wrong candle, no missing signal.
    await reset_live(db_url, settings, day0)
    report = await run_live(
        settings,
        LiveOptions(until="+20m", speed=150, url=db_url, metrics=False, faults=FAULTS),
        hooks=NullHooks(),
    )
    assert report.gaps >= 2 and report.repairs >= 2
    signals, candles, _ = await live_rows(settings, db_url)
    cols = ["instrument_token", "time", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(
        candles[cols].reset_index(drop=True), clean_candles[cols].reset_index(drop=True)
    )
    cols = ["instrument_token", "time", "direction", "confidence", "model_version"]
    pd.testing.assert_frame_equal(
        signals[cols].reset_index(drop=True), clean_signals[cols].reset_index(drop=True)
    )
    await asyncio.sleep(0)
