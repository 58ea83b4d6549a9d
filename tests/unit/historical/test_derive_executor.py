"""derive dispatched through a ComputeExecutor writes what the inline derive writes (in-memory ports)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd

from fakes import InMemoryHistoricalContext
from tickwise.adapters.dask.executor import InProcessExecutor
from tickwise.domain.instrument import Instrument
from tickwise.pipelines.historical.progress import Reporter
from tickwise.pipelines.historical.run import (
    DeriveJob,
    DeriveSpec,
    HistoricalSummary,
    InstrumentDerived,
    derive,
    derive_instrument,
)

INSTRUMENTS = [
    Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1),
    Instrument(2953217, 11536, "TCS", "TCS", "NSE", "NSE", "EQ", 0.05, 1),
]


def _candles(token: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = [
        t
        for day in ("2026-01-05", "2026-01-06", "2026-01-07")
        for t in pd.date_range(f"{day} 03:45", periods=375, freq="1min", tz="UTC")
    ]
    close = 1000 + np.cumsum(rng.normal(0, 1, len(times)))
    return pd.DataFrame(
        {
            "instrument_token": token,
            "timeframe": "1m",
            "time": times,
            "open": close + rng.normal(0, 0.2, len(times)),
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": rng.integers(100, 1000, len(times)),
            "oi": 0,
            "source": "historical",
        }
    )


async def _seeded() -> InMemoryHistoricalContext:
    ctx = InMemoryHistoricalContext()
    for i, inst in enumerate(INSTRUMENTS):
        await ctx.candles.add_frame(_candles(inst.instrument_token, i))
    return ctx


async def test_derive_through_an_executor_writes_the_same_rows_as_inline() -> None:
    inline, dispatched = await _seeded(), await _seeded()
    await derive(inline, INSTRUMENTS, Reporter(quiet=True), first := HistoricalSummary())

    spec = DeriveSpec.of(dispatched.options)

    def task(job: DeriveJob) -> InstrumentDerived:  # runs on the executor's thread, like a worker
        return asyncio.run(
            derive_instrument(
                dispatched.candles, dispatched.features, dispatched.labels, dispatched.calendar, spec, job
            )
        )

    await derive(
        dispatched,
        INSTRUMENTS,
        Reporter(quiet=True),
        second := HistoricalSummary(),
        executor=InProcessExecutor(),
        task=task,
    )
    assert first.feature_rows > 0 and first.label_rows > 0
    assert (second.feature_rows, second.label_rows, second.rollup_rows) == (
        first.feature_rows,
        first.label_rows,
        first.rollup_rows,
    )
    for table in ("candles", "features", "labels"):
        pd.testing.assert_frame_equal(
            _rows(getattr(inline, table).table), _rows(getattr(dispatched, table).table)
        )


def _rows(table: object) -> pd.DataFrame:
    key = list(table.key)  # type: ignore[attr-defined]
    frame = pd.DataFrame(list(table.rows.values()))  # type: ignore[attr-defined]
    assert len(frame) > 0
    return frame.sort_values(key).reset_index(drop=True)
