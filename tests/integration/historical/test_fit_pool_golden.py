"""The golden ``tickwise historical`` run (``test_training_load_golden.py``) with its fits trained in a
pool of two worker processes (``compute.fit_workers: 2``) and in this process (``1``), whatever this
machine's core count: both give the recorded models (every booster's text) and signals."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
import test_training_load_golden as golden

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.mark.parametrize("workers", [2, 1])
async def test_the_golden_run_trains_the_recorded_models_with_any_number_of_fit_workers(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path, workers: int
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_historical

    base = golden._settings(tmp_path)
    compute = base.compute.model_copy(update={"fit_workers": workers})
    settings = base.model_copy(update={"compute": compute})
    assert settings.compute.fit_workers == workers
    quiet = Reporter(quiet=True)
    with quiet:
        await run_historical(settings, quiet, url=db_url)
    assert await golden._digests(clean_db) == json.loads(golden.GOLDEN.read_text())
