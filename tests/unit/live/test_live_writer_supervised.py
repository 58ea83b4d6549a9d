"""The session supervises its writer: a dead writer ends the session with a clear, fatal error."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from pathlib import Path
from types import TracebackType

import numpy as np
import pytest
from live_fakes import SilentFeed

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.writer import BufferedWriter, WriterStopped

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


class RunningFeed(SilentFeed):
    """A feed that runs (sends nothing) until the session closes it."""

    def __init__(self) -> None:
        super().__init__()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(asyncio.Event().wait())
        return self.task

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.task is not None:
            self.task.cancel()


class BrokenWriteHooks(NullHooks):
    """A hook with a bug: it raises after the first committed write (the writer loop does not expect it)."""

    def on_db_write(self, table: str, latency_s: float, rows: int) -> None:
        raise RuntimeError("bug in on_db_write")


async def count(rows: list[object]) -> int:
    return len(rows)


def no_signal(token: int, t: datetime, row: np.ndarray) -> Signal | None:
    return None


async def test_a_writer_that_dies_ends_the_session_with_a_clear_fatal_error(tmp_path: Path) -> None:
    writer = BufferedWriter(
        {n: count for n in ("ticks", "candles", "features", "signals")},
        interval_s=0.01,
        spill_dir=tmp_path / "spill",
        hooks=BrokenWriteHooks(),
    )
    writer.put("ticks", [1])
    session = LiveSession(
        open_feed=lambda on_gap: RunningFeed(),
        source=NoCandles(),
        clock=FixedClock(),
        engine=LiveEngine(FeatureCalculator(), no_signal, writer.put),
        writer=writer,
        tokens=[1],
        day=DAY,
        until=datetime(2025, 1, 6, 15, 0, tzinfo=IST),
        calendar=NSE,
    )
    with pytest.raises(WriterStopped, match=r"database writer stopped .*bug in on_db_write") as caught:
        await asyncio.wait_for(session.run(None), 20.0)
    assert caught.value.exit_code == 1
    assert session.report.ended_by.startswith("error: the live database writer stopped")
