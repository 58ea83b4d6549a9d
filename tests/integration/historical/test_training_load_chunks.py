"""The training load in date-range chunks (issue 15) keeps the very arrays of one read of each
instrument's whole history: the bars' keys, values and missing-value counts, every instrument's labels
and closes, and the training set built from them, bit for bit; in memory and spilled, over the whole
history and over a window whose start is inside a session (the warm-up rows are the instrument's first
rows, not each chunk's)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pytest
from historical_support import backfilled_and_derived, simulator_settings

from reference_dataset import assert_same_training_set
from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.bootstrap.historical import open_historical
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.date_chunks import history_chunks
from tickwise.pipelines.historical.train import TrainingData, load_timeframe

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _same_load(got: TrainingData, expected: TrainingData, end: datetime) -> None:
    bars, whole = got.bars, expected.bars
    assert bars.columns == whole.columns and len(bars) == len(whole) > 1000
    for name in ("token", "times", "source"):
        assert np.array_equal(bars.key(name), whole.key(name)), name
    assert np.array_equal(bars.nan_counts, whole.nan_counts)
    assert np.array_equal(bars.take().view(np.int64), whole.take().view(np.int64))
    assert list(got.labels) == list(expected.labels)
    for token, kept in got.labels.items():
        pd.testing.assert_frame_equal(kept.frame(), expected.labels[token].frame(), check_exact=True)
        for name, column in kept.columns.items():  # the kept dtypes too
            assert column.read().dtype == expected.labels[token].columns[name].read().dtype
    assert list(got.closes) == list(expected.closes)
    for key in expected.closes:
        pd.testing.assert_series_equal(got.closes[key], expected.closes[key], check_exact=True)
    assert got.candidates == expected.candidates
    assert got.last_candle == expected.last_candle
    assert_same_training_set(got.training_set(end), expected.training_set(end))


async def test_a_load_read_in_session_chunks_keeps_the_arrays_of_the_whole_history_read(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = simulator_settings(tmp_path, backfill_days=8)
    chunked_settings = simulator_settings(tmp_path, backfill_days=8, COMPUTE__CHUNK_SESSIONS="2")
    calc = FeatureCalculator()
    async with backfilled_and_derived(settings, db_url) as (ctx, universe):
        whole = await load_timeframe(ctx, calc, Timeframe.M1, None, None)
        last = whole.last_candle
        # A window as `tickwise train --start --end` loads it, both bounds inside a session.
        start = (last - timedelta(days=5, hours=1, minutes=13)).to_pydatetime()
        end = (last - timedelta(hours=20, minutes=29)).to_pydatetime()
        whole_window = await load_timeframe(ctx, calc, Timeframe.M1, start, end)
    token = universe[0].instrument_token
    async with open_historical(chunked_settings, url=db_url) as ctx:
        assert ctx.options.chunk_sessions == 2
        assert len(await history_chunks(ctx.candles, ctx.calendar, token, Timeframe.M1, 2, None, None)) == 4
        windows = [(None, None, whole), (start, end, whole_window)]
        for lo, hi, expected in windows:
            cut = expected.last_candle.to_pydatetime() if hi is None else min(hi, expected.last_candle)
            _same_load(await load_timeframe(ctx, calc, Timeframe.M1, lo, hi), expected, cut)
            with ScratchRowSpill(tmp_path / "scratch") as spill:
                spilled = await load_timeframe(ctx, calc, Timeframe.M1, lo, hi, spill)
                # one matrix file per chunk with rows, not one per instrument
                parts = sum(p.name.startswith("part-") for p in spill.directory.iterdir())
                assert parts > len(spilled.labels)
                _same_load(spilled, expected, cut)
