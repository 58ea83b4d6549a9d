"""The end of a session never stores a bar behind a pending repair window (issue #13)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import numpy as np
from live_fakes import SilentFeed

from fakes import FakeClock, InMemoryRepairWindowRepository
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.repair import RepairQueue
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.writer import BufferedWriter

T = datetime(2025, 1, 6, 10, 0, tzinfo=IST)
M = timedelta(minutes=1)


class ProcessedBars(LiveEngine):
    """The real engine's interface, remembering which bars reached ``process`` (and so the database)."""

    def __init__(self) -> None:
        super().__init__(FeatureCalculator(), self.no_signal, lambda table, rows: None)
        self.seen: list[datetime] = []

    @staticmethod
    def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
        return None

    def process(self, bar: Bar, closed_at: float | None = None) -> Signal | None:
        self.seen.append(bar.time)
        return None


def bar(t: datetime) -> Bar:
    return Bar(Candle(1, Timeframe.M1, t, 10.0, 11.0, 9.0, 10.5, 100, None, "live"))


def test_held_bars_behind_a_pending_window_are_dropped_and_counted_not_stored() -> None:
    queue = RepairQueue(NSE)
    queue.mark(T + 3 * M, T + 5 * M, "fatal feed error")
    for i in range(8):
        queue.hold(bar(T + i * M), 0.0)
    engine = ProcessedBars()
    dropped = queue.release_all(engine, until=T + 60 * M)
    assert engine.seen == [T + i * M for i in range(3)]
    assert dropped == 5


def test_with_no_window_pending_every_held_bar_before_until_is_stored() -> None:
    queue = RepairQueue(NSE)
    for i in range(4):
        queue.hold(bar(T + i * M), 0.0)
    engine = ProcessedBars()
    assert queue.release_all(engine, until=T + 3 * M) == 1
    assert engine.seen == [T, T + M, T + 2 * M]


async def test_a_window_is_recorded_as_soon_as_it_is_marked_so_a_kill_minus_9_leaves_it_known() -> None:
    store = InMemoryRepairWindowRepository()
    engine = ProcessedBars()
    writer = BufferedWriter({n: count for n in ("ticks", "candles", "features", "signals")})
    session = LiveSession(
        open_feed=lambda on_gap: SilentFeed(),
        source=NoCandles(),
        clock=FakeClock(at=T),
        engine=engine,
        writer=writer,
        tokens=[1],
        day=T.date(),
        until=T + 60 * M,
        calendar=NSE,
        windows=store,
    )
    session.repairs.mark(T - 10 * M, T, "start-up gap")  # derived from the stored bars again: not recorded
    session.repairs.mark(T + 3 * M, T + 5 * M, "disconnected")
    await asyncio.sleep(0.01)
    assert await store.open_windows(T.date()) == [(T + 3 * M, T + 5 * M)]


async def count(rows: list[object]) -> int:
    return len(rows)


class NoCandles:
    async def historical(
        self, instrument_token: int, interval: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        return []
