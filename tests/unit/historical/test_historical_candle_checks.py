"""The data-quality step of ``derive`` on in-memory ports: flags stored, counted, kept out of labels."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pandas as pd

from fakes import InMemoryCandleFlagRepository, InMemoryHistoricalContext
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.core.candle_flags import CandleCheckConfig
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.historical.candle_checks import CandleQuality
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.pipelines.historical.progress import Reporter
from tickwise.pipelines.historical.run import HistoricalSummary, derive

DAYS = NSE.trading_days(date(2026, 10, 5), date(2026, 10, 14))


async def _context_with_bad_prints() -> tuple[InMemoryHistoricalContext, int]:
    universe = Universe(3, NSE, today=date(2026, 11, 30))
    market = Market(universe, seed=11, bad_prints=0.01)
    member = universe.equities[0]
    token = member.instrument.instrument_token
    rows = market.candles(
        token,
        1,
        datetime.combine(DAYS[0], time(0), tzinfo=IST),
        datetime.combine(DAYS[-1], time(23), tzinfo=IST),
        datetime(2030, 1, 1, tzinfo=IST),
    )
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
    frame = frame.assign(
        time=pd.to_datetime(frame["time"]).dt.tz_convert("UTC"),
        instrument_token=token,
        timeframe="1m",
        oi=pd.array([None] * len(frame), dtype="Int64"),
        source="historical",
    )
    ctx = InMemoryHistoricalContext(options=HistoricalOptions(timeframes=(Timeframe.M5,)))
    await ctx.instruments.upsert_many([member.instrument])
    await ctx.candles.add_frame(frame, on_conflict="nothing")
    return ctx, token


async def test_derive_stores_flags_counts_them_and_keeps_excluded_bars_out_of_labels() -> None:
    ctx, token = await _context_with_bad_prints()
    hooks = RecordingHooks()
    quality = CandleQuality(InMemoryCandleFlagRepository(), CandleCheckConfig(anomaly=False), hooks)
    summary = HistoricalSummary(first_day=DAYS[0], last_day=DAYS[-1])
    universe = await ctx.instruments.all()
    await derive(ctx, universe, Reporter(quiet=True), summary, quality=quality)

    flags = await quality.flags.read_frame(token, Timeframe.M1)
    counts = summary.candle_flags
    assert counts is not None and counts.excluded_bars > 10
    assert sum(counts.by_check.values()) == len(flags)
    assert {"stale", "zero_volume", "wick_iqr"} <= set(flags["check"])
    assert sum(args[2] for args in hooks.of("on_candles_flagged")) == len(flags)

    labels = await ctx.labels.read_frame(token, Timeframe.M1)
    assert len(labels) > 0
    excluded = np.sort(flags.loc[flags["action"] == "excluded", "time"].to_numpy(dtype="datetime64[ns]"))
    t0 = labels["time"].to_numpy(dtype="datetime64[ns]")
    t1 = labels["t1"].to_numpy(dtype="datetime64[ns]")
    inside = np.searchsorted(excluded, t1, side="right") - np.searchsorted(excluded, t0, side="left")
    assert (inside == 0).all()  # no stored label's barrier window holds an excluded bar

    again = HistoricalSummary(first_day=DAYS[0], last_day=DAYS[-1])
    await derive(ctx, universe, Reporter(quiet=True), again, quality=quality)
    assert len(await quality.flags.read_frame(token, Timeframe.M1)) == len(flags)  # re-checking is idempotent
    assert await quality.flags.counts() == {
        (str(c), str(a)): int(n) for (c, a), n in flags.groupby(["check", "action"]).size().items()
    }


async def test_derive_without_the_checks_labels_every_bar_as_before() -> None:
    ctx, token = await _context_with_bad_prints()
    summary = HistoricalSummary(first_day=DAYS[0], last_day=DAYS[-1])
    await derive(ctx, await ctx.instruments.all(), Reporter(quiet=True), summary)
    assert summary.candle_flags is None
    assert len(await ctx.labels.read_frame(token, Timeframe.M1)) > 0
