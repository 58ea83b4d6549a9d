"""The health snapshot reads a session through its public parts."""

from __future__ import annotations

import time
from datetime import date, datetime

import numpy as np
from live_fakes import SilentFeed

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.health import HealthMonitor
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.writer import BufferedWriter

DAY = date(2025, 1, 6)
NOW = datetime(2025, 1, 6, 10, 0, tzinfo=IST)


class FixedClock:
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return time.monotonic()


class NoCandles:
    async def historical(
        self, instrument_token: int, interval: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        return []


async def count(rows: list[object]) -> int:
    return len(rows)


def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
    return None


async def test_a_snapshot_reports_feed_queue_ticks_and_repairs_of_the_session() -> None:
    writer = BufferedWriter({n: count for n in ("ticks", "candles", "features", "signals")})
    engine = LiveEngine(FeatureCalculator(), no_signal, writer.put)
    feed = SilentFeed()
    session = LiveSession(
        open_feed=lambda on_gap: feed,
        source=NoCandles(),
        clock=FixedClock(),
        engine=engine,
        writer=writer,
        tokens=[1],
        day=DAY,
        until=datetime(2025, 1, 6, 11, 0, tzinfo=IST),
        calendar=NSE,
    )
    session.feed = feed
    session.watch.attach(feed)
    feed.queue.put_nowait(Tick(instrument_token=1, mode="full", tradable=True, last_price=1.0))
    session.consumer.consume_batch(
        [Tick(instrument_token=1, mode="full", tradable=True, last_price=100.0, exchange_timestamp=NOW)]
    )
    session.repairs.mark(NOW, NOW, "test")
    snap = HealthMonitor(model_version="m1", stale_tick_s=10.0).snapshot(session)
    assert snap["feed_alive"] and snap["feed_state"] == "connected"
    assert snap["queue_depth"] == 1 and snap["repair_windows"] == 1
    assert snap["tick_age_max_s"] is not None and snap["tick_age_max_s"] < 10.0
    assert snap["stale_instruments"] == [] and snap["model_loaded"] == "m1"
    assert snap["market_time"] == NOW.isoformat() and snap["db_reachable"]
