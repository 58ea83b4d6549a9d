"""Batch prediction in date-range chunks (issue 15) writes the very signals of one read of each
instrument's whole history: the same rows and values (``sample`` included) and the same counts, with
a model that has a regime layer, a meta model and a regime filter on the change-point column (the
recursive, windowed parts of scoring), and with a plain model; over the whole history and from a
``start`` to an ``end`` inside sessions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pandas as pd
import pytest
from historical_support import backfilled_and_derived, simulator_settings

from tickwise.bootstrap.historical import open_historical
from tickwise.config import Settings
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.date_chunks import history_chunks
from tickwise.pipelines.historical.predict import PredictOutcome, predict_signals
from tickwise.pipelines.historical.train import train_model
from tickwise.pipelines.models import load_model
from tickwise.ports.repositories import ModelRecord

pytestmark = [pytest.mark.db, pytest.mark.slow]

PLAIN = "m-plain-no-regime-no-meta"


def _settings(tmp: Path, chunk_sessions: int, *, regime_filter: bool) -> Settings:
    keys = {
        "COMPUTE__CHUNK_SESSIONS": str(chunk_sessions),
        "MODEL_TRAINING__TRIALS": "1",
        "MODEL_TRAINING__FOLDS": "2",
        "MODEL_TRAINING__NUM_BOOST_ROUND": "20",
        "SIGNALS__META__MIN_EVENTS": "20",
    }
    if regime_filter:
        keys["SIGNALS__REGIME_FILTER__MAX_CHANGE_PROB"] = "0.3"
    return simulator_settings(tmp, backfill_days=9, **keys)


async def _signals(pool: asyncpg.Pool) -> pd.DataFrame:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT instrument_token, timeframe, time, model_version, available_at, direction, confidence, "
            "mode, feature_set, latency_ms, size, meta_prob, meta_size, sample FROM signals "
            "ORDER BY instrument_token, timeframe, time, model_version"
        )
        await conn.execute("TRUNCATE signals")
    return pd.DataFrame([dict(r) for r in rows])


def _counts(outcome: PredictOutcome) -> tuple[object, ...]:
    """Everything an outcome says but the seconds it took."""
    return (
        outcome.model_version,
        outcome.rows,
        outcome.longs,
        outcome.shorts,
        outcome.instruments,
        outcome.start,
        outcome.end,
        outcome.in_sample,
    )


async def test_predict_in_session_chunks_writes_the_signals_of_the_whole_history_read(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    whole_filtered = _settings(tmp_path, 1000, regime_filter=True)
    async with backfilled_and_derived(whole_filtered, db_url) as (ctx, universe):
        last = await ctx.candles.last_time(universe[0].instrument_token, Timeframe.M1)
        assert last is not None
        # trained on the first days only, so that the later bars are out of sample (``sample``: both kinds)
        trained = await train_model(ctx, end=last - timedelta(days=4))
        model = await load_model(ctx, trained.model_version)
        assert model.regime is not None and model.meta is not None  # the recursive and the meta layers
        # The same boosters without the regime layer and the meta model.
        plain = replace(model, version=PLAIN, regime=None, meta=None)
        location = await ctx.store.save(PLAIN, plain.to_files())
        await ctx.models.insert(
            ModelRecord(PLAIN, plain.feature_set, plain.feature_names, artifact_path=location)
        )
    day = last.astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
    # mid-session bounds: inside the third-last session to inside the last one
    start, end = (
        day - timedelta(days=3) + timedelta(hours=11, minutes=7),
        day + timedelta(hours=13, minutes=3),
    )
    cases = [
        (trained.model_version, True, None, None),
        (trained.model_version, True, start, end),
        (PLAIN, False, None, None),
        (PLAIN, False, start, end),
    ]
    for version, regime_filter, lo, hi in cases:
        results = []
        for chunk_sessions in (1000, 2):
            settings = _settings(tmp_path, chunk_sessions, regime_filter=regime_filter)
            async with open_historical(settings, url=db_url) as ctx:
                chunks = await history_chunks(
                    ctx.candles,
                    ctx.calendar,
                    universe[0].instrument_token,
                    Timeframe.M1,
                    chunk_sessions,
                    lo,
                    hi,
                )
                outcome = await predict_signals(ctx, start=lo, end=hi, version=version)
            results.append((len(chunks), _counts(outcome), await _signals(clean_db)))
        (one, whole_counts, whole), (several, chunked_counts, chunked) = results
        assert one == 1 and several >= (2 if lo is not None else 4), (version, lo, several)
        assert chunked_counts == whole_counts
        assert len(whole) > 500 and whole_counts[1] == len(whole)
        pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
        if lo is None:
            assert set(whole["sample"]) == {"oos", "in_sample"}
        else:
            assert pd.Timestamp(whole["time"].min()) >= pd.Timestamp(lo)
            assert pd.Timestamp(whole["time"].max()) < pd.Timestamp(hi)
        if version == PLAIN:
            assert whole["meta_prob"].isna().all()
        else:
            assert whole["meta_prob"].notna().any()
