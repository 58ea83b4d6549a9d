"""`tickwise train` builds the features and labels its range lacks (the contract; "retrain after a
feature change" in docs/operations.md): after a candles-only `tickwise backfill`, `train` trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def tickwise(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
async def test_train_after_a_candles_only_backfill_builds_features_and_labels_and_trains(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update(
        TICKWISE_ENV="test",
        DATABASE_URL=db_url,
        TICKWISE__SYSTEM__DATA_DIR=str(tmp_path),
        TICKWISE__BROKER__TOKEN_FILE=str(tmp_path / "kite_token.json"),
        TICKWISE__TRADING__SYMBOLS="[INFY]",
        TICKWISE__TRADING__BACKFILL_DAYS="8",
        TICKWISE__MODEL_TRAINING__TRIALS="1",
    )
    backfill = tickwise("backfill", env=env)
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM features") == 0
        assert await conn.fetchval("SELECT count(*) FROM labels") == 0

    train = tickwise("train", env=env)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    async with clean_db.acquire() as conn:
        candles = await conn.fetchval("SELECT count(*) FROM candles WHERE timeframe = '1m'")
        assert await conn.fetchval("SELECT count(*) FROM features WHERE timeframe = '1m'") == candles
        assert await conn.fetchval("SELECT count(*) FROM labels") > 0
        assert await conn.fetchval("SELECT count(*) FROM models WHERE status = 'champion'") == 1
