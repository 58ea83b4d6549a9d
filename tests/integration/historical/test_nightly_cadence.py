"""The nightly historical run between retrains: nothing new to fetch, no champion training (the retrain
cadence, model_training.retrain_every_days), and the out-of-sample history reuses its fold models."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tickwise.bootstrap.historical import Reporter, run_historical
from tickwise.config import Settings, load_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]


def settings(tmp: Path) -> Settings:
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": "[INFY, TCS]",
        "TICKWISE__TRADING__BACKFILL_DAYS": "8",
        "TICKWISE__MODEL_TRAINING__TRIALS": "1",
    }
    return load_settings(environ=env, environment="test")


async def test_a_second_run_within_the_cadence_keeps_the_champion_and_reuses_the_fold_models(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    quiet = Reporter(quiet=True)
    with quiet:
        first = await run_historical(settings(tmp_path), quiet, url=db_url)
    assert first.train is not None and first.train.status == "champion"
    assert first.retrain == "no champion model yet"
    assert first.oos is not None
    async with clean_db.acquire() as conn:
        signals = await conn.fetchval("SELECT count(*) FROM signals")
        models = await conn.fetchval("SELECT count(*) FROM models")

    with quiet:
        second = await run_historical(settings(tmp_path), quiet, url=db_url)
    assert second.train is None
    assert second.retrain is not None and second.retrain.startswith("retrain not due")
    assert second.oos is not None and all(fold.reused for fold in second.oos.folds)
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM signals") == signals
        assert await conn.fetchval("SELECT count(*) FROM models") == models
        champion = await conn.fetchval("SELECT model_version FROM models WHERE status = 'champion'")
        universe = await conn.fetch("SELECT tradingsymbol FROM universe ORDER BY 1")
    assert champion == first.train.model_version
    assert [r["tradingsymbol"] for r in universe] == ["INFY", "TCS"]
