"""The continuous NIFTY front-month series built from the simulator's contracts across an expiry week."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import asyncpg
import pandas as pd
import pytest
import pytest_asyncio

from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.bootstrap.broker import Broker, open_simulated_broker
from tickwise.config import Settings, load_settings
from tickwise.core.futures import RollRule, continuous_token, futures_of
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.futures import backfill_continuous, build_continuous
from tickwise.pipelines.historical.instruments import InstrumentManager

# Monday 2026-11-23 is the November expiry (the last Tuesday, the 24th, is a holiday); after the close
# the dump still lists NOV, DEC and JAN, so both sides of the roll are fetchable.
SIM_START = datetime(2026, 11, 23, 16, 0, tzinfo=IST)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def broker() -> AsyncIterator[Broker]:
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=SIM_START, speed=0) as b:
        yield b


async def test_the_continuous_series_has_no_gap_and_no_jump_beyond_the_roll_adjustment(
    broker: Broker,
) -> None:
    contracts = futures_of(await broker.rest.instruments("NFO"), "NIFTY")
    nov, dec = contracts[0], contracts[1]
    assert nov.expiry == date(2026, 11, 23) and dec.tradingsymbol == "NIFTY26DECFUT"

    async def fetch(token: int, day: date) -> pd.DataFrame:
        return await broker.rest.historical_frame(token, "minute", day, day)

    days = NSE.trading_days(date(2026, 11, 16), date(2026, 11, 23))
    series, report = await build_continuous("NIFTY", contracts, days, fetch, RollRule(1))

    # no gap: every session minute of every day, once, under the synthetic token
    assert (
        len(series) == 375 * len(days) and series["time"].is_unique and series["time"].is_monotonic_increasing
    )
    assert set(series["instrument_token"]) == {continuous_token("NIFTY")}
    assert report.days_built == len(days) and not report.failed_days and not report.uncovered_days
    # one roll, after the last session with one session left (Friday the 20th), into DEC
    (roll,) = report.rolls
    assert (roll.last_old_day, roll.old_token, roll.new_token) == (
        date(2026, 11, 20),
        nov.instrument_token,
        dec.instrument_token,
    )
    assert roll.gap > 0  # the later contract carries more carry

    nov_20 = await fetch(nov.instrument_token, date(2026, 11, 20))
    dec_20 = await fetch(dec.instrument_token, date(2026, 11, 20))
    dec_23 = await fetch(dec.instrument_token, date(2026, 11, 23))
    on = series.set_index("time")
    last_old, first_new = nov_20["time"].iloc[-1], dec_23["time"].iloc[0]
    # back-adjusted: the old segment is shifted by exactly the gap, so at the roll minute the series
    # equals the new contract, and the overnight jump is the new contract's own overnight move
    assert (
        on.loc[last_old, "close"] == round(nov_20["close"].iloc[-1] + roll.gap, 2) == dec_20["close"].iloc[-1]
    )
    jump = on.loc[first_new, "open"] - on.loc[last_old, "close"]
    assert abs(jump - (dec_23["open"].iloc[0] - dec_20["close"].iloc[-1])) < 1e-6
    # the newest segment is raw DEC prices (tradable), volumes are never adjusted
    assert list(on.loc[on.index >= first_new, "close"]) == list(dec_23["close"])
    assert series["volume"].sum() == sum(
        [(await fetch(nov.instrument_token, d))["volume"].sum() for d in days[:-1]],
        int(dec_23["volume"].sum()),
    )


@pytest.mark.db
async def test_sync_stores_expiries_and_the_backfill_stores_the_series_under_its_synthetic_instrument(
    clean_db: asyncpg.Pool, broker: Broker
) -> None:
    instruments = TimescaleInstrumentRepository(clean_db)
    candles = TimescaleCandleRepository(clean_db)
    await InstrumentManager(broker.rest, instruments, today=lambda: SIM_START.date()).sync()
    stored = {i.tradingsymbol: i for i in await instruments.all()}
    dec = stored["NIFTY26DECFUT"]
    assert (dec.expiry, dec.lot_size, dec.segment) == (date(2026, 12, 29), 75, "NFO-FUT")
    assert stored["BANKNIFTY26NOVFUT"].expiry == date(2026, 11, 23)

    synthetic, reports = await backfill_continuous(
        ["NIFTY", "NOSUCH"], instruments, candles, broker.rest, date(2026, 11, 19), date(2026, 11, 23)
    )
    (nifty,) = synthetic
    assert (nifty.instrument_token, nifty.tradingsymbol, nifty.lot_size) == (
        continuous_token("NIFTY"),
        "NIFTY-FUT-CONT",
        75,
    )
    assert reports[1].underlying == "NOSUCH" and len(reports[1].uncovered_days) == 3
    frame = await candles.read_frame(nifty.instrument_token, Timeframe.M1)
    assert len(frame) == 3 * 375
    assert (await instruments.by_symbols("NFO", ["NIFTY-FUT-CONT"]))[0].lot_size == 75
    # the backtest sizes the series' trades in the front contract's lots
    lots = await TimescaleBacktestRepository(clean_db).lot_sizes([nifty.instrument_token])
    assert lots == {nifty.instrument_token: 75}


@pytest.mark.db
async def test_the_historical_wiring_adds_the_configured_futures_series_to_the_universe(
    clean_db: asyncpg.Pool, db_url: str, broker: Broker, tmp_path: Path
) -> None:
    from tickwise.bootstrap.historical import _continuous_futures, open_historical
    from tickwise.pipelines.historical.run import HistoricalSummary

    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp_path),
        "TICKWISE__TRADING__FUTURES": "[BANKNIFTY]",
        "TICKWISE__TRADING__FUTURES_ROLL_SESSIONS": "0",
    }
    settings = load_settings(environ=env, environment="test")
    summary = HistoricalSummary(first_day=date(2026, 11, 20), last_day=date(2026, 11, 23))
    async with open_historical(settings, url=db_url) as ctx:
        await InstrumentManager(broker.rest, ctx.instruments, today=lambda: SIM_START.date()).sync()
        (added,) = await _continuous_futures(settings, ctx, broker.rest, summary)
        assert added.tradingsymbol == "BANKNIFTY-FUT-CONT" and added.lot_size == 35
        frame = await ctx.candles.read_frame(added.instrument_token, Timeframe.M1)
    # roll_sessions 0: NOV is held through its expiry day, so both days come from NOV, no roll
    assert len(frame) == 2 * 375
    nov_23 = await broker.rest.historical_frame(
        (36_000 + 26 * 12 + 10) << 8 | 2, "minute", date(2026, 11, 23), date(2026, 11, 23)
    )
    assert list(frame["close"].iloc[-375:]) == list(nov_23["close"])
