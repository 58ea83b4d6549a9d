"""Helpers of the live integration tests: settings, the model fixture's data, and the oracle checks.

The oracle of a live session over ``[09:15, until)`` of its day: every 1m candle equals the simulator's
REST candle of that minute, and the live signals equal ``predict_signals`` (the batch path) over the
same bars with the same model, one per bar, without duplicates.
"""

from __future__ import annotations

import socket
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tickwise.adapters.kite.simulator import Market, Universe
from tickwise.bootstrap.historical import open_historical
from tickwise.config import Settings, load_settings
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

SYMBOLS = '["INFY","TCS","RELIANCE"]'


def free_port() -> int:
    """A port the OS just had free: other test runs on this machine start simulators too, so the
    shipped default ports (8765/8766) may be taken between the simulator's check and its bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_env(db_url: str, data: Path) -> dict[str, str]:
    """The environment of a test run (also what a ``tickwise live`` subprocess gets)."""
    return {
        "TICKWISE__BROKER__SIMULATOR__PORT": str(free_port()),
        "TICKWISE__BROKER__SIMULATOR__WS_PORT": str(free_port()),
        "TICKWISE_ENV": "test",
        "TICKWISE_DATA_DIR": str(data),
        "DATABASE_URL": db_url,
        "TICKWISE__TRADING__SYMBOLS": SYMBOLS,
        "TICKWISE__TRADING__BACKFILL_DAYS": "5",
        "TICKWISE__MODEL_TRAINING__TRIALS": "1",
        "TICKWISE__MODEL_TRAINING__FOLDS": "2",
        "TICKWISE__MODEL_TRAINING__NUM_BOOST_ROUND": "20",
        "TICKWISE__MONITORING__METRICS_PORT": "0",
        "TICKWISE__LIVE__SPILL_DIR": str(data / "spill"),
    }


def make_settings(db_url: str, data: Path) -> Settings:
    return load_settings(environ=live_env(db_url, data), environment="test")


async def live_day(settings: Settings, db_url: str) -> date:
    """The day a simulated live run starts on: the trading day after the newest stored 1m candle."""
    async with open_historical(settings, url=db_url) as ctx:
        last = await ctx.candles.last_time(None, Timeframe.M1)
    assert last is not None
    return NSE.next_trading_day(last.astimezone(IST).date())


def day_open(day: date) -> datetime:
    return datetime.combine(day, time(9, 15), tzinfo=IST)


async def reset_live(settings: Settings, db_url: str, since: datetime) -> None:
    """Delete every row a live run (and the batch oracle) wrote from ``since`` on."""
    async with open_historical(settings, url=db_url) as ctx, ctx.pool.acquire() as conn:
        for table in ("candles", "features", "signals"):
            await conn.execute(f"DELETE FROM {table} WHERE time >= $1", since)
        await conn.execute("TRUNCATE ticks")


async def assert_session_complete(settings: Settings, db_url: str, day: date, minutes: int) -> None:
    """Candles == REST for every minute of ``[09:15, 09:15 + minutes)``; live signals == batch, one per bar."""
    start = day_open(day)
    end = start + timedelta(minutes=minutes)
    async with open_historical(settings, url=db_url) as ctx:
        candles = await ctx.candles.read_many(None, Timeframe.M1, start)
        live = await ctx.signals.read_frame(start, start + timedelta(hours=7), mode="live")
    tokens = sorted(int(t) for t in candles["instrument_token"].unique())
    assert len(tokens) == 3
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
        rest = market.candles(token, 1, start, end - timedelta(minutes=1), now=end + timedelta(hours=12))
        assert len(rest) == minutes
        diff = [(g, r) for g, r in zip(got, rest, strict=False) if g != r]
        assert got == rest, (
            f"instrument {token}: {len(got)} live candles, {len(diff)} differ from REST: {diff[:3]}"
        )

    key = ["instrument_token", "time"]
    assert not live.duplicated(key).any(), "duplicate live signals"
    assert len(live) == len(tokens) * minutes, "a bar after warm-up has no live signal"
    assert live["time"].min() >= pd.Timestamp(start) and live["time"].max() < pd.Timestamp(end)

    from tickwise.pipelines.historical.predict import predict_signals

    async with open_historical(settings, url=db_url) as ctx:
        # Over the whole day: the only candles of the day are the live ones.
        await predict_signals(ctx, start=start, end=start + timedelta(hours=7))
        batch = await ctx.signals.read_frame(start, start + timedelta(hours=7), mode="historical")
    merged = live.merge(batch, on=key, suffixes=("_live", "_batch"))
    assert len(merged) == len(live) == len(batch)
    assert (merged["direction_live"] == merged["direction_batch"]).all()
    assert np.abs(merged["confidence_live"] - merged["confidence_batch"]).max() <= 1e-9
    assert (merged["model_version_live"] == merged["model_version_batch"]).all()
