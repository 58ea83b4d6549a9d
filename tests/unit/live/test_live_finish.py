"""The end of a session never stores a bar behind a pending repair window (issue #13)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.repair import RepairQueue

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
