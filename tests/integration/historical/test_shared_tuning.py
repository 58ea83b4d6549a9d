"""`tune` with `model_training.optuna_storage`: two training processes join one study in PostgreSQL, the
study stops at `trials` in all (not per process), both processes run trials of it and both pick the same
best trial, whichever of them ran it."""

from __future__ import annotations

import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import optuna
import pytest

from tickwise.core.fitting import TrainConfig
from tickwise.pipelines.historical.tuning import tune

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "historical"))
from historical_synthetic import synthetic_training_set

pytestmark = [pytest.mark.db, pytest.mark.slow]

SCHEMA = "optuna"
TRIALS = 6


def _sqlalchemy_url(dsn: str) -> str:
    """The libpq DSN as Optuna's SQLAlchemy URL in its own schema (docs/scaling.md: Optuna's
    ``alembic_version`` would collide with tickwise's in ``public``)."""
    sep = "&" if "?" in dsn else "?"
    return (
        dsn.replace("postgresql://", "postgresql+psycopg2://", 1) + f"{sep}options=-csearch_path%3D{SCHEMA}"
    )


def _train(ts: Any, cfg: TrainConfig, start: Any, out: Any) -> None:
    ran: list[int] = []
    start.wait(timeout=120)  # both processes tune at the same time
    params, folds, _ = tune(ts, np.arange(len(ts)), cfg, on_trial=lambda number, _: ran.append(number))
    out.put((params, [f.metrics["logloss"] for f in folds], ran))


async def test_two_training_processes_share_one_study_and_pick_the_same_best_trial(
    db_url: str, admin_pool: asyncpg.Pool
) -> None:
    async with admin_pool.acquire() as conn:  # what an operator does once (docs/scaling.md)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION tickwise_app")
    try:
        ts = synthetic_training_set(n_bars=1500, n_instruments=2)
        cfg = replace(
            TrainConfig(trials=TRIALS, folds=2, num_boost_round=30, early_stopping_rounds=5),
            optuna_storage=_sqlalchemy_url(db_url),
            study_name="tickwise-shared-tuning-test",
        )
        spawn = multiprocessing.get_context("spawn")
        start, out = spawn.Barrier(2), spawn.Queue()
        workers = [spawn.Process(target=_train, args=(ts, cfg, start, out)) for _ in range(2)]
        for w in workers:
            w.start()
        results = [out.get(timeout=300) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        assert [w.exitcode for w in workers] == [0, 0]

        study = optuna.load_study(study_name=cfg.study_name, storage=cfg.optuna_storage)
        finished = [t for t in study.trials if t.state.is_finished()]
        # The study stops at TRIALS in all; a trial the other process had already begun may finish too.
        assert TRIALS <= len(finished) <= TRIALS + 1
        ran = [set(r[2]) for r in results]
        assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, never on the same trial
        assert results[0][0] == results[1][0]  # the same best params in both processes
        assert results[0][1] == results[1][1]  # and the same fold results, re-run where it was not run
        best = study.best_trial
        assert {k: v for k, v in results[0][0].items() if k != "bagging_freq"} == best.params
    finally:
        async with admin_pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
