"""A whole ``tickwise historical`` on a small simulated universe trains the very models it trained
before the training data was loaded per instrument into arrays and spilled to disk (issue 15): the
same model versions,
the same LightGBM text of every booster (fold models, the champion candidate, meta models), the same
regime layers and the same historical signals.

The expected digests are in ``golden/historical_models.json``, recorded from the pandas-merge loader
(commit 13937af) with ``TICKWISE_WRITE_GOLDEN=1``. A change that is meant to change the models (the
feature set, the labels, the training rules, the simulator) re-records them the same way, and says so
in its commit; a loader change never may.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import asyncpg
import pytest
from historical_support import simulator_settings

from tickwise.config import Settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

GOLDEN = Path(__file__).parent / "golden" / "historical_models.json"
# model.json carries metrics that include wall-clock seconds in places; the models are the other files.
SKIPPED_FILES = {"model.json"}


def _settings(tmp: Path) -> Settings:
    return simulator_settings(
        tmp,
        backfill_days=12,
        TRADING__SIGNAL_TIMEFRAMES='["1m", "5m"]',
        MODEL_TRAINING__TRIALS="1",
        MODEL_TRAINING__FOLDS="2",
        MODEL_TRAINING__NUM_BOOST_ROUND="20",
        WALK_FORWARD__MIN_TRAIN_SESSIONS="5",
        WALK_FORWARD__REFIT_EVERY_SESSIONS="2",
        WALK_FORWARD__MIN_TRAIN_EVENTS="300",
        WALK_FORWARD__NUM_BOOST_ROUND="20",
        ENSEMBLE__MIN_TRAIN_SESSIONS="2",
        ENSEMBLE__REFIT_EVERY_SESSIONS="1",
        ENSEMBLE__MIN_TRAIN_EVENTS="100",
    )


def _bundle_digest(path: str | None) -> dict[str, str]:
    if path is None:  # the ensemble's fold models keep their layer in the models row, no bundle
        return {}
    directory = Path(path)
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(directory.iterdir())
        if f.is_file() and f.name not in SKIPPED_FILES
    }


async def _digests(pool: asyncpg.Pool) -> dict[str, object]:
    async with pool.acquire() as conn:
        models = await conn.fetch("SELECT model_version, status, artifact_path FROM models ORDER BY 1")
        signals = await conn.fetch(
            "SELECT instrument_token, timeframe, time, model_version, direction, confidence, size, "
            "meta_prob FROM signals ORDER BY instrument_token, timeframe, time, model_version"
        )
    digest = hashlib.sha256(repr([tuple(r) for r in signals]).encode()).hexdigest()
    return {
        "models": {
            r["model_version"]: {"status": r["status"], "files": _bundle_digest(r["artifact_path"])}
            for r in models
        },
        "signals": {"rows": len(signals), "sha256": digest},
    }


async def test_a_whole_historical_run_trains_the_same_models_and_signals_as_the_pandas_loader_did(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_historical

    quiet = Reporter(quiet=True)
    with quiet:
        summary = await run_historical(_settings(tmp_path), quiet, url=db_url)
    assert summary.train is not None and summary.oos is not None
    assert not any((tmp_path / "scratch").iterdir())  # the run's spilled feature matrices are gone
    got = await _digests(clean_db)
    if os.environ.get("TICKWISE_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert len(got["models"]) > 5  # type: ignore[arg-type]
    assert sorted(got["models"]) == sorted(expected["models"])  # type: ignore[call-overload]
    assert got == expected
