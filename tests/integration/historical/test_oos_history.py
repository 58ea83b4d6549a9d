"""Out-of-sample history on the real database and the simulator: every historical signal comes from a
fold model that never saw its bar, its labels' ends or the embargo after them."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tickwise.config import Settings, load_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

OOS_VIOLATIONS = """
SELECT count(*) FROM signals s JOIN models m USING (model_version)
WHERE s.mode = 'historical'
  AND NOT (s.time > m.trained_to + make_interval(secs => (m.params->>'embargo_seconds')::float8))
"""


def _settings(tmp: Path) -> Settings:
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": "[INFY, RELIANCE, TCS]",
        "TICKWISE__TRADING__BACKFILL_DAYS": "11",
        "TICKWISE__MODEL_TRAINING__TRIALS": "1",
        "TICKWISE__MODEL_TRAINING__FOLDS": "2",
        "TICKWISE__MODEL_TRAINING__NUM_BOOST_ROUND": "20",
        "TICKWISE__WALK_FORWARD__MIN_TRAIN_SESSIONS": "4",
        "TICKWISE__WALK_FORWARD__REFIT_EVERY_SESSIONS": "2",
        "TICKWISE__WALK_FORWARD__MIN_TRAIN_EVENTS": "200",
        "TICKWISE__WALK_FORWARD__NUM_BOOST_ROUND": "20",
    }
    return load_settings(environ=env, environment="test")


async def test_fold_models_write_only_out_of_sample_history_and_a_rerun_reuses_them(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.historical import open_historical
    from tickwise.pipelines.historical.oos import write_oos_history
    from tickwise.pipelines.historical.run import HistoricalSummary, Reporter, derive, sync_and_backfill

    settings = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    async with open_historical(settings, url=db_url) as ctx:
        summary = HistoricalSummary()
        universe = await sync_and_backfill(ctx, settings, quiet, summary)
        await derive(ctx, settings, universe, quiet, summary)
        first = await write_oos_history(ctx)
        assert len(first.folds) >= 2  # refits every 2 sessions after the first 4 with warm features
        assert first.rows > 0 and not any(f.reused for f in first.folds)
        assert 0.3 < first.metrics["oos_auc"] < 0.8
        async with clean_db.acquire() as conn:
            assert await conn.fetchval(OOS_VIOLATIONS) == 0
            rows = await conn.fetch(
                "SELECT s.sample, m.status, count(*) AS n FROM signals s JOIN models m USING (model_version) "
                "GROUP BY 1, 2"
            )
            assert [(r["sample"], r["status"]) for r in rows] == [("oos", "fold")]
            assert sum(r["n"] for r in rows) == first.rows
            # each bar is scored by exactly one fold model
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM (SELECT 1 FROM signals GROUP BY instrument_token, timeframe, time "
                    "HAVING count(*) > 1) d"
                )
                == 0
            )
            windows = await conn.fetch(
                "SELECT trained_from, trained_to, mlflow_run_id FROM models WHERE status = 'fold' ORDER BY trained_to"
            )
            assert len(windows) == len(first.folds) and all(
                w["trained_to"] > w["trained_from"] for w in windows
            )
        second = await write_oos_history(ctx)
        assert [f.model_version for f in second.folds] == [f.model_version for f in first.folds]
        assert all(f.reused for f in second.folds)
        async with clean_db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM signals") == first.rows
