"""Live index futures in a simulated expiry week: the roll-day session streams the new contract under the
continuous series' token, and the stored series equals what historical mode's continuous backfill builds.

November 2026: the NOV contract expires on Monday the 23rd (the 24th is a holiday); with the default
rule (one session left) the series holds NOV through Friday the 20th and DEC from Monday the 23rd.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository
from tickwise.bootstrap.broker import open_simulated_broker
from tickwise.bootstrap.live import MarketClock, continuous_instruments, futures_session
from tickwise.config import Settings, load_settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.futures import continuous_token, futures_of
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.historical.futures import backfill_continuous, build_continuous
from tickwise.pipelines.historical.instruments import InstrumentManager
from tickwise.pipelines.live.contracts import MappedCandleSource, MappedFeed
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.sinks import LiveRepositories, table_sinks
from tickwise.pipelines.live.writer import BufferedWriter
from tickwise.ports.market_feed import FeedGap

pytestmark = [pytest.mark.db]

FRIDAY, ROLL_DAY = date(2026, 11, 20), date(2026, 11, 23)
NIFTY = continuous_token("NIFTY")
MINUTES = 8
COLUMNS = ["time", "open", "high", "low", "close", "volume"]


def futures_settings(data: Path) -> Settings:
    env = {"TICKWISE__SYSTEM__DATA_DIR": str(data), "TICKWISE__TRADING__FUTURES": "[NIFTY]"}
    return load_settings(environ=env, environment="test")


def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
    return None  # the model is not under test here: candles and features are


async def test_a_roll_day_session_streams_the_new_contract_and_stores_what_historical_builds(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = futures_settings(tmp_path)
    instruments = TimescaleInstrumentRepository(clean_db)
    candles = TimescaleCandleRepository(clean_db)

    # The nightly run on Friday: instrument master and the continuous series, held in NOV.
    friday_evening = datetime.combine(FRIDAY, time(18, 0), tzinfo=IST)
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=friday_evening, speed=0) as b:
        await InstrumentManager(b.rest, instruments, today=lambda: FRIDAY).sync()
        (series,), _ = await backfill_continuous(
            ["NIFTY"], instruments, candles, b.rest, date(2026, 11, 18), FRIDAY
        )
    assert series.instrument_token == NIFTY
    nov, dec = futures_of(await instruments.all(active_only=False), "NIFTY")[:2]
    assert nov.expiry == ROLL_DAY

    # Monday: the live session of the roll day.
    # Started late: the first minutes come through the REST repair of the start-up gap, the rest from the feed.
    opening = datetime.combine(ROLL_DAY, time(9, 17, 30), tzinfo=IST)
    until = datetime.combine(ROLL_DAY, time(9, 15), tzinfo=IST) + timedelta(minutes=MINUTES)
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=opening, speed=60) as broker:
        (cont,) = await continuous_instruments(settings, instruments, NSE)
        assert cont.instrument_token == NIFTY
        contracts, reopen = await futures_session(
            settings, instruments, candles, broker.rest, ROLL_DAY, [NIFTY], NSE
        )
        # the new contract is subscribed for the series, and the stored history was shifted once
        assert dict(contracts.to_continuous) == {dec.instrument_token: NIFTY}
        assert reopen == [NIFTY]
        again, reopen_again = await futures_session(
            settings, instruments, candles, broker.rest, ROLL_DAY, [NIFTY], NSE
        )
        assert again.to_continuous == contracts.to_continuous and reopen_again == []

        calculator = FeatureCalculator()
        engine = LiveEngine(calculator, no_signal, lambda table, rows: writer.put(table, rows))
        history = await candles.read_frame(NIFTY, Timeframe.M1)
        engine.open_instrument(NIFTY, history)
        repos = LiveRepositories(
            ticks=TimescaleTickRepository(clean_db),
            candles=candles,
            features=TimescaleFeatureRepository(clean_db),
            signals=TimescaleSignalRepository(clean_db),
        )
        sinks = table_sinks(
            repos,
            names=calculator.names,
            feature_set=calculator.feature_set,
            hooks=NullHooks(),
            latencies=LatencyLog(),
        )
        writer = BufferedWriter(sinks, batch_size=500, interval_s=0.2, spill_dir=tmp_path / "spill")
        feeds: list[MappedFeed] = []

        def open_feed(on_gap: Callable[[FeedGap], None]) -> MappedFeed:
            feeds.append(MappedFeed(broker.ticker(overflow="block", on_gap=on_gap), contracts))
            return feeds[-1]

        session = LiveSession(
            open_feed=open_feed,
            source=MappedCandleSource(broker.rest, contracts, NSE),
            clock=MarketClock(broker.now),
            engine=engine,
            writer=writer,
            tokens=[NIFTY],
            day=ROLL_DAY,
            until=until,
            calendar=NSE,
            speed=60,
        )
        session.consumer.token_map = contracts.to_continuous
        last = history["time"].iloc[-1].to_pydatetime()
        report = await session.run(last + timedelta(minutes=1))
        assert [f.subscribed for f in feeds] == [[dec.instrument_token]]
        assert report.ticks_accepted > 0 and report.bars == MINUTES
        assert report.repaired_bars >= 2  # 09:15 and 09:16 at least, fetched from DEC, stored as NIFTY

        # What historical mode's continuous backfill builds over the same days, from the same REST.
        async def fetch(token: int, day: date) -> pd.DataFrame:
            return await broker.rest.historical_frame(token, Timeframe.M1, day, day)

        days = NSE.trading_days(date(2026, 11, 18), ROLL_DAY)
        expected, built = await build_continuous("NIFTY", [nov, dec], days, fetch)
        # ... and what the nightly run stores: rebuilding the window moves no stored price
        before = await candles.read_frame(NIFTY, Timeframe.M1, None, until)
        await backfill_continuous(["NIFTY"], instruments, candles, broker.rest, date(2026, 11, 18), ROLL_DAY)
        after = await candles.read_frame(NIFTY, Timeframe.M1, None, until)
        pd.testing.assert_frame_equal(before[COLUMNS], after[COLUMNS], check_dtype=False)
        await candles.add_frame(before, on_conflict="update")  # the live rows as they were (source)
    (roll,) = built.rolls
    assert (roll.last_old_day, roll.new_token) == (FRIDAY, dec.instrument_token) and roll.gap != 0
    expected = expected[expected["time"] < pd.Timestamp(until)].reset_index(drop=True)
    stored = await candles.read_frame(NIFTY, Timeframe.M1, None, until)
    # same token, same minutes, same prices: the roll day from the live feed, the past shifted by the gap
    assert len(stored) == len(expected) == 3 * 375 + MINUTES
    pd.testing.assert_frame_equal(
        stored[COLUMNS].reset_index(drop=True), expected[COLUMNS].reset_index(drop=True), check_dtype=False
    )
    today = stored[stored["time"] >= pd.Timestamp(datetime.combine(ROLL_DAY, time(9, 15), tzinfo=IST))]
    assert set(today["source"]) == {"live"}
    async with clean_db.acquire() as conn:
        tick_tokens = {
            r["instrument_token"] for r in await conn.fetch("SELECT DISTINCT instrument_token FROM ticks")
        }
    assert tick_tokens == {NIFTY}
