"""The historical mode end to end against the real database and the simulator (small universe).

Both tests read one first run of the historical mode (``first_run``, on an emptied database), in this
file's order: the first reruns it, which must write nothing; the second then adds an older model and
its signals, which nothing after it reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from historical_support import HistoricalRun, first_historical_run

from tickwise.bootstrap.historical import Reporter, run_historical
from tickwise.config import Settings, load_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

SYMBOLS = "[INFY, RELIANCE, TCS]"


def _settings(tmp: Path) -> Settings:
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": SYMBOLS,
        "TICKWISE__TRADING__BACKFILL_DAYS": "12",
        "TICKWISE__MODEL_TRAINING__TRIALS": "2",
        "TICKWISE__MODEL_TRAINING__FOLDS": "3",
        "TICKWISE__MODEL_TRAINING__NUM_BOOST_ROUND": "40",
        "TICKWISE__MODEL_TRAINING__RETRAIN_EVERY_DAYS": "0",  # the second run re-trains (and skips, idempotent)
    }
    return load_settings(environ=env, environment="test")


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    out = {}
    async with pool.acquire() as conn:
        for table in ("candles", "features", "labels", "signals", "models", "backfill_log"):
            out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    return out


first_run = first_historical_run("historical-pipeline", _settings)


async def test_historical_mode_runs_twice_idempotently_and_tables_join(
    first_run: HistoricalRun, pool: asyncpg.Pool, db_url: str
) -> None:
    settings, first, tmp_path = first_run.settings, first_run.summary, first_run.tmp
    quiet = Reporter(quiet=True)
    assert first.instruments == 3
    assert first.backfill is not None and first.backfill.fetched_days == 3 * 12
    assert first.integrity is not None and first.integrity.invalid_candles == 0
    assert first.train is not None and not first.train.skipped and first.train.status == "champion"
    assert first.oos is not None and first.oos.rows > 0  # historical signals: out of sample only
    counts = await _counts(pool)
    assert counts["candles"] >= 3 * 12 * 375 and counts["features"] >= 3 * 12 * 375
    assert counts["models"] == 1 + len(first.oos.folds) and counts["signals"] == first.oos.rows
    assert (tmp_path / "mlruns").is_dir() and first.train.mlflow_run_id

    async with pool.acquire() as conn:
        joined = await conn.fetchval(
            "SELECT count(*) FROM signals s "
            "JOIN features f USING (instrument_token, timeframe, time) "
            "JOIN labels l USING (instrument_token, timeframe, time) "
            "JOIN candles c USING (instrument_token, timeframe, time) "
            "JOIN models m ON m.model_version = s.model_version "
            "WHERE l.side = 1 AND s.mode = 'historical' AND f.feature_set = s.feature_set"
        )
        assert joined > 1000
        bad_available = await conn.fetchval(
            "SELECT count(*) FROM signals WHERE available_at <> time + interval '1 minute' OR latency_ms IS NOT NULL"
        )
        assert bad_available == 0

    with quiet:
        second = await run_historical(settings, quiet, url=db_url)
    assert second.backfill is not None and second.backfill.fetched_days == 0
    assert second.backfill.rows_received == 0
    assert second.train is not None and second.train.skipped
    assert second.train.model_version == first.train.model_version
    assert second.feature_rows == 0 and second.label_rows == 0
    assert await _counts(pool) == counts


async def test_predict_with_an_older_model_tags_signals_with_that_version(
    first_run: HistoricalRun, db_url: str
) -> None:
    from tickwise.bootstrap.historical import open_historical
    from tickwise.pipelines.historical.predict import predict_signals
    from tickwise.pipelines.historical.train import train_model

    settings, summary = first_run.settings, first_run.summary
    assert summary.train is not None and summary.train.trained_to is not None
    async with open_historical(settings, url=db_url) as ctx:
        older = await train_model(ctx, end=summary.train.trained_to - timedelta(days=3), trials=1)
        assert older.model_version != summary.train.model_version
        start = summary.train.trained_to - timedelta(days=1)
        outcome = await predict_signals(ctx, start=start, version=older.model_version)
        assert outcome.model_version == older.model_version and outcome.rows > 0
        frame = await ctx.signals.read_frame(
            start, None, mode="historical", model_version=older.model_version
        )
        assert len(frame) == outcome.rows
        assert set(frame["model_version"]) == {older.model_version}
        champion = await ctx.models.champion()
        assert champion is not None
