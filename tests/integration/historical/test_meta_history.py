"""Meta-labeling end to end on the simulator and the real database: `tickwise historical` fills
``labels.meta`` from each fold's own out-of-sample signals, and the fold models' meta models size
those signals (``signals.meta_prob``/``meta_size``)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import numpy as np
import pytest
from historical_support import simulator_settings

from tickwise.config import Settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

# Every proposal of a fold model joined with its own label on the proposed side.
PROPOSALS = """
SELECT s.direction, s.meta_prob, s.meta_size, l.ret, l.meta, (m.params->>'meta_model')::bool AS has_meta
FROM signals s
JOIN models m USING (model_version)
JOIN labels l ON l.instrument_token = s.instrument_token AND l.timeframe = s.timeframe
  AND l.time = s.time AND l.side = s.direction
WHERE s.mode = 'historical' AND s.direction <> 0
"""


def _settings(tmp: Path) -> Settings:
    return simulator_settings(
        tmp,
        MODEL_TRAINING__TRIALS="1",
        MODEL_TRAINING__FOLDS="2",
        MODEL_TRAINING__NUM_BOOST_ROUND="20",
        MODEL_TRAINING__SIGNAL_THRESHOLD="0.5",
        WALK_FORWARD__MIN_TRAIN_SESSIONS="5",
        WALK_FORWARD__REFIT_EVERY_SESSIONS="3",
        WALK_FORWARD__MIN_TRAIN_EVENTS="200",
        WALK_FORWARD__NUM_BOOST_ROUND="20",
        SIGNALS__META__MIN_EVENTS="50",
        SIGNALS__META__NUM_BOOST_ROUND="20",
    )


async def test_historical_fills_labels_meta_from_each_folds_own_signals_and_sizes_them_by_its_meta_model(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    with quiet:
        outcome = await run_historical(settings, quiet, url=db_url)
    assert outcome.oos is not None and outcome.oos.rows > 0
    async with clean_db.acquire() as conn:
        rows = await conn.fetch(PROPOSALS)
        n_meta = await conn.fetchval("SELECT count(*) FROM labels WHERE meta IS NOT NULL")
        flat_meta = await conn.fetchval(
            "SELECT count(*) FROM labels l WHERE l.meta IS NOT NULL AND NOT EXISTS (SELECT 1 FROM signals s "
            "WHERE s.instrument_token = l.instrument_token AND s.time = l.time AND s.direction = l.side)"
        )
        flat_sized = await conn.fetchval(
            "SELECT count(*) FROM signals WHERE direction = 0 AND (meta_size IS NOT NULL OR meta_prob IS NOT NULL)"
        )
        with_meta = await conn.fetchval("SELECT count(*) FROM models WHERE (params->>'meta_model')::bool")
    assert len(rows) > 100
    # labels.meta: exactly the labelled proposals, 1 where the proposed side's trade made money.
    assert n_meta == len(rows) and flat_meta == 0
    assert all(r["meta"] == int(r["ret"] > 0.0) for r in rows)
    assert outcome.oos.meta_labels == len(rows)
    # Sizes: every proposal of a fold with a meta model has one, in [0, 1] in steps of 0.1; flat bars none.
    assert with_meta >= 1 and flat_sized == 0
    sized = [r for r in rows if r["has_meta"]]
    assert sized and all(r["meta_size"] is not None and r["meta_prob"] is not None for r in sized)
    sizes = np.array([r["meta_size"] for r in sized])
    assert np.all((sizes >= 0) & (sizes <= 1)) and np.allclose(sizes * 10, np.round(sizes * 10))
    assert all(r["meta_size"] is None for r in rows if not r["has_meta"])
    assert "oos_meta_auc" in outcome.oos.metrics


async def _shuffle_outcomes(pool: asyncpg.Pool, seed: int) -> None:
    """Permute each side's outcomes (label, ret, exit price, barrier together) across all bars, so the
    meta-labels (from ret) carry nothing a model could learn; t1 stays, so purging is unchanged."""
    rng = np.random.default_rng(seed)
    async with pool.acquire() as conn, conn.transaction():
        for side in (1, -1):
            rows = await conn.fetch(
                "SELECT instrument_token, timeframe, time, label, ret, exit_price, barrier FROM labels "
                "WHERE side = $1 ORDER BY instrument_token, time",
                side,
            )
            order = rng.permutation(len(rows))
            await conn.executemany(
                "UPDATE labels SET label = $5, ret = $6, exit_price = $7, barrier = $8 "
                "WHERE instrument_token = $1 AND timeframe = $2 AND time = $3 AND side = $4",
                [
                    (r["instrument_token"], r["timeframe"], r["time"], side, *(rows[j][c] for c in cols))
                    for r, j in zip(rows, order.tolist(), strict=True)
                    for cols in [("label", "ret", "exit_price", "barrier")]
                ],
            )


async def test_on_shuffled_outcomes_the_fold_meta_models_are_chance_out_of_sample(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.broker import open_broker
    from tickwise.bootstrap.historical import HistoricalSummary, Reporter, open_historical
    from tickwise.bootstrap.models import oos_options_of
    from tickwise.pipelines.historical.oos import write_oos_history
    from tickwise.pipelines.historical.run import derive, sync_and_backfill

    settings = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    async with open_historical(settings, url=db_url) as ctx:
        summary = HistoricalSummary()
        async with open_broker(settings) as broker:
            universe = await sync_and_backfill(ctx, broker.rest, broker.rest, broker.now(), quiet, summary)
        await derive(ctx, universe, quiet, summary)
        await _shuffle_outcomes(clean_db, seed=5)
        shuffled = await write_oos_history(ctx, oos_options_of(settings))
    print(f"shuffled outcomes: {shuffled.metrics}")
    assert shuffled.metrics["oos_meta_events"] > 1000
    assert abs(shuffled.metrics["oos_meta_auc"] - 0.5) < 0.05
