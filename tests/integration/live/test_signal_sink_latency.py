"""The live signal sink stores each signal's latency beside it, not in a rebuilt copy of the signal:
the stored rows equal those of the old stamp (``dataclasses.replace(signal, latency_ms=...)``)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleSignalRepository
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.engine import PendingSignal
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.sinks import signal_sink

pytestmark = pytest.mark.db

T = pd.Timestamp("2024-03-01 09:15", tz="Asia/Kolkata").to_pydatetime()


def _signal(i: int) -> Signal:
    meta = None if i % 2 else 0.6
    return Signal(
        100 + i, Timeframe.M1, T, T + timedelta(minutes=1), "m1", i % 3 - 1, 0.5 + i / 100.0, "live",
        "fs", None, 0.01 * i, meta, meta,
    )  # fmt: skip


def _signals(n: int) -> list[Signal]:
    return [_signal(i) for i in range(n)]


class _Wall:
    """A wall clock that moves 1.23456 s per read (so the stamp rounds a fraction)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.23456
        return self.now


async def _stored(pool: asyncpg.Pool) -> pd.DataFrame:
    frame = await TimescaleSignalRepository(pool).read_frame(None, None, mode="live")
    return frame.drop(columns=["created_at"]).sort_values("instrument_token").reset_index(drop=True)


async def test_the_sink_stores_the_rows_the_rebuilt_stamped_signals_stored(clean_db: asyncpg.Pool) -> None:
    signals = _signals(7)
    # Two close instants in one batch (a minute and a bar that closed on its own tick).
    rows = [PendingSignal(s, 1_700_000_000.5 if i < 5 else 1_699_999_999.25) for i, s in enumerate(signals)]
    repo = TimescaleSignalRepository(clean_db)
    latencies = LatencyLog()
    wall = _Wall()
    write = signal_sink(repo, NullHooks(), latencies, wall)
    assert await write(rows) == 7
    new = await _stored(clean_db)
    assert len(latencies) == 7

    async with clean_db.acquire() as con:
        await con.execute("TRUNCATE signals")
    now = 1_700_000_000.0 + 1.23456  # the first read of the wall above
    stamped = [dataclasses.replace(p.signal, latency_ms=round((now - p.closed_at) * 1000.0, 3)) for p in rows]
    assert await repo.add_many(stamped) == 7
    old = await _stored(clean_db)

    pd.testing.assert_frame_equal(new, old)
    assert sorted(set(new["latency_ms"])) == sorted({734.56, 1984.56})
    assert all(s.latency_ms is None for s in signals)  # the engine's signals are left as they were


async def test_latencies_that_do_not_match_the_signals_are_refused(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleSignalRepository(clean_db)
    with pytest.raises(ValueError, match="2 latencies for 3 signals"):
        await repo.add_many(_signals(3), [1.0, 2.0])
