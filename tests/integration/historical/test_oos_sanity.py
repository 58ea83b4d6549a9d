"""Sanity of the out-of-sample history on the simulator: labels shuffled across bars leave nothing to
learn, so the out-of-sample AUC is 0.5 +/- 0.03; the simulator's planted edge (autocorrelated short-term
returns, trend and mean-reversion days) gives a clearly higher one."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import numpy as np
import pytest
from historical_support import simulator_settings

from tickwise.config import Settings

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _settings(tmp: Path) -> Settings:
    return simulator_settings(
        tmp,
        symbols="[INFY, RELIANCE, TCS, HDFCBANK]",
        backfill_days=14,
        WALK_FORWARD__MIN_TRAIN_SESSIONS="4",
        WALK_FORWARD__REFIT_EVERY_SESSIONS="3",
        WALK_FORWARD__MIN_TRAIN_EVENTS="500",
        WALK_FORWARD__NUM_BOOST_ROUND="60",
    )


async def _shuffle_labels(pool: asyncpg.Pool, seed: int) -> None:
    """Permute the label column of each side across all bars (t1, ret and weights stay in place)."""
    rng = np.random.default_rng(seed)
    async with pool.acquire() as conn, conn.transaction():
        for side in (1, -1):
            rows = await conn.fetch(
                "SELECT instrument_token, timeframe, time, label FROM labels WHERE side = $1", side
            )
            shuffled = rng.permutation([r["label"] for r in rows])
            await conn.executemany(
                "UPDATE labels SET label = $5 WHERE instrument_token = $1 AND timeframe = $2 AND time = $3 "
                "AND side = $4",
                [
                    (r["instrument_token"], r["timeframe"], r["time"], side, int(label))
                    for r, label in zip(rows, shuffled, strict=True)
                ],
            )


async def test_out_of_sample_auc_is_chance_on_shuffled_labels_and_clearly_above_on_the_planted_edge(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.broker import open_broker
    from tickwise.bootstrap.historical import HistoricalSummary, Reporter, open_historical
    from tickwise.bootstrap.models import oos_options_of
    from tickwise.pipelines.historical.oos import write_oos_history
    from tickwise.pipelines.historical.run import derive, sync_and_backfill

    settings = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    oos = oos_options_of(settings)
    async with open_historical(settings, url=db_url) as ctx:
        summary = HistoricalSummary()
        async with open_broker(settings) as broker:
            universe = await sync_and_backfill(ctx, broker.rest, broker.rest, broker.now(), quiet, summary)
        await derive(ctx, universe, quiet, summary)
        real = await write_oos_history(ctx, oos)
        await _shuffle_labels(clean_db, seed=3)
        async with clean_db.acquire() as conn:
            await conn.execute("TRUNCATE signals")
        shuffled = await write_oos_history(ctx, oos)
    print(f"oos auc: planted edge {real.metrics}, shuffled {shuffled.metrics}")
    assert shuffled.metrics["oos_events"] > 5000
    assert [f.model_version for f in shuffled.folds] != [f.model_version for f in real.folds]
    assert abs(shuffled.metrics["oos_auc"] - 0.5) < 0.03
    assert real.metrics["oos_auc"] > 0.53
    assert real.metrics["oos_auc"] - shuffled.metrics["oos_auc"] > 0.02
