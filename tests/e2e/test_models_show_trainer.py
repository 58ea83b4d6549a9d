"""`tickwise models show` tells a user how a model was trained (model_training.distributed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from cli_support import invoke
from tickwise.adapters.timescale import TimescaleModelRepository
from tickwise.adapters.timescale.pool import open_pool
from tickwise.ports.repositories import ModelRecord

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.db, pytest.mark.slow]  # a CLI start-up importing MLflow


async def _seed(db_url: str) -> None:
    async with open_pool(db_url, min_size=1, max_size=2) as pool:
        repo = TimescaleModelRepository(pool)
        await repo.insert(
            ModelRecord("f1", "fs", ("a",), status="fold", params={"trainer": "dask", "trainer_workers": 2})
        )
        await repo.insert(ModelRecord("f2", "fs", ("a",), status="fold", params={"num_leaves": 15}))


def test_models_show_says_a_model_was_trained_by_dask_and_on_how_many_workers(
    tmp_path: Path, db_url: str, clean_db: asyncpg.Pool
) -> None:
    asyncio.run(_seed(db_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update({"TICKWISE_ENV": "test", "TICKWISE_DATA_DIR": str(tmp_path), "DATABASE_URL": db_url})

    def show(version: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickwise.cli.main", "models", "show", version],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    dask = show("f1")
    assert dask.returncode == 0, dask.stderr
    assert "trained by dask (2 workers)" in dask.stdout
    single = invoke(["models", "show", "f2"], env)  # in-process: the console script's path is tested above
    assert single.returncode == 0, single.stderr
    assert "trained by" not in single.stdout
