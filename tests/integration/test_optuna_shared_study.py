"""`model_training.optuna_storage` on PostgreSQL: two worker processes share one Optuna study.

The test database's DSN (a libpq ``?passfile=`` URL) becomes a SQLAlchemy URL for Optuna's RDB storage;
the parent creates the study (and Optuna's tables), then two spawned processes each run trials on it
and both see all of them. Optuna's schema is dropped afterwards.
"""

from __future__ import annotations

import multiprocessing
import os

import asyncpg
import optuna
import pytest

pytestmark = [pytest.mark.db, pytest.mark.slow]

STUDY = "tickwise-shared-study-test"
SCHEMA = "optuna"
TRIALS_EACH = 4


def _sqlalchemy_url(dsn: str) -> str:
    """The libpq DSN as Optuna's SQLAlchemy URL, in its own schema: Optuna versions its tables in a
    table named ``alembic_version``, which in ``public`` is tickwise's own migration record."""
    sep = "&" if "?" in dsn else "?"
    return (
        dsn.replace("postgresql://", "postgresql+psycopg2://", 1) + f"{sep}options=-csearch_path%3D{SCHEMA}"
    )


def _worker(storage: str, seed: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=STUDY, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed)
    )

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())
        x = trial.suggest_float("x", -10.0, 10.0)
        return (x - 2.0) ** 2

    study.optimize(objective, n_trials=TRIALS_EACH)


async def _drop_optuna_schema(admin_pool: asyncpg.Pool) -> None:
    async with admin_pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


async def test_two_worker_processes_share_one_study_in_the_test_database(
    db_url: str, admin_pool: asyncpg.Pool
) -> None:
    storage = _sqlalchemy_url(db_url)
    async with admin_pool.acquire() as conn:  # what an operator does once (docs/scaling.md)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION tickwise_app")
    try:
        optuna.create_study(study_name=STUDY, storage=storage, direction="minimize", load_if_exists=True)
        spawn = multiprocessing.get_context("spawn")
        workers = [spawn.Process(target=_worker, args=(storage, seed)) for seed in (1, 2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=180)
        assert [w.exitcode for w in workers] == [0, 0]

        study = optuna.load_study(study_name=STUDY, storage=storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) == 2 * TRIALS_EACH
        assert {t.user_attrs["pid"] for t in done} == {w.pid for w in workers}
        assert len({t.number for t in done}) == 2 * TRIALS_EACH  # one numbering across both processes
    finally:
        await _drop_optuna_schema(admin_pool)
