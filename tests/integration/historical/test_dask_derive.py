"""Derive (roll-ups, features, labels) in chunks of sessions, in this process or on a Dask cluster of
worker processes, writes exactly the rows of one unchunked single-process pass: the table contents are
compared as text (float8 prints its shortest exact form, so equal text is equal bits, NaN included)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from derived_tables import backfill_1m, derive_settings, derived_contents, forget_derived
from distributed import Client, LocalCluster
from historical_support import hang_watchdog

from tickwise.adapters.dask.deadline import RESTART_TIMEOUT_S
from tickwise.adapters.dask.executor import DaskExecutor, InProcessExecutor
from tickwise.adapters.dask.lgbm import fit_distributed
from tickwise.bootstrap.compute import PartitionJob, derive_task, load_training_partition
from tickwise.bootstrap.historical import HistoricalSummary, Reporter, open_historical, run_backfill
from tickwise.config import Settings
from tickwise.core.dataset import training_set_of
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.fitting import TUNED_DEFAULTS
from tickwise.core.model import lgb_params
from tickwise.core.training import trainable_features
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.run import DeriveSpec, derive
from tickwise.pipelines.historical.train import load_timeframe
from tickwise.pipelines.universe import select_universe
from tickwise.ports.compute import ComputeExecutor

pytestmark = [pytest.mark.db, pytest.mark.slow]

FIT_DEADLINE_S = 300.0  # this fit takes seconds; a hang fails with a ModelError naming the stuck step


def _settings(tmp: Path, chunk_sessions: int = 40) -> Settings:
    return derive_settings(tmp, TICKWISE__COMPUTE__CHUNK_SESSIONS=str(chunk_sessions))


async def _derive_with(
    settings: Settings, db_url: str, executor: ComputeExecutor | None, backfilled: HistoricalSummary
) -> HistoricalSummary:
    summary = HistoricalSummary(first_day=backfilled.first_day, last_day=backfilled.last_day)
    async with open_historical(settings, url=db_url) as ctx:
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        task = derive_task(db_url, ctx.calendar, DeriveSpec.of(ctx.options)) if executor else None
        await derive(ctx, universe, Reporter(quiet=True), summary, executor=executor, task=task)
    return summary


async def test_chunks_in_one_process_and_on_a_two_process_dask_cluster_equal_one_unchunked_pass(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    whole = _settings(tmp_path, chunk_sessions=1_000)  # one chunk: the single pass from the anchor
    settings = _settings(tmp_path, chunk_sessions=2)  # 6 sessions: three chunks, cut inside the warm-up
    backfilled = await backfill_1m(settings, db_url, clean_db)  # derive from the 1m candles alone

    single = await _derive_with(whole, db_url, None, backfilled)
    expected = await derived_contents(clean_db)
    assert single.feature_rows > 0 and single.label_rows > 0
    assert {len(rows) > 0 for rows in expected.values()} == {True}

    await forget_derived(clean_db)
    chunked = await _derive_with(settings, db_url, None, backfilled)
    assert await derived_contents(clean_db) == expected
    assert (chunked.feature_rows, chunked.label_rows) == (single.feature_rows, single.label_rows)
    assert chunked.rollup_rows == single.rollup_rows
    assert (single.derive_chunks, chunked.derive_chunks) == (3, 9)  # 3 instruments
    assert chunked.integrity is not None and single.integrity is not None
    assert vars(chunked.integrity) == vars(single.integrity)

    await forget_derived(clean_db)
    cluster = await asyncio.to_thread(
        LocalCluster, n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    try:
        client = await asyncio.to_thread(Client, cluster)
        try:
            distributed = await _derive_with(
                settings, db_url, DaskExecutor(client, "test cluster"), backfilled
            )
        finally:
            await asyncio.to_thread(client.close)
    finally:
        await asyncio.to_thread(cluster.close)

    assert await derived_contents(clean_db) == expected
    assert (distributed.feature_rows, distributed.label_rows) == (single.feature_rows, single.label_rows)
    assert distributed.rollup_rows == single.rollup_rows
    assert distributed.derive_chunks == 9
    assert distributed.integrity is not None and single.integrity is not None
    assert distributed.integrity.sessions == single.integrity.sessions > 0


async def test_the_in_process_executor_runs_the_same_worker_task_and_a_rerun_writes_nothing(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, chunk_sessions=4)
    backfilled = await backfill_1m(settings, db_url, clean_db)
    first = await _derive_with(settings, db_url, InProcessExecutor(), backfilled)
    assert first.feature_rows > 0 and first.label_rows > 0 and sum(first.rollup_rows.values()) > 0
    again = await _derive_with(settings, db_url, InProcessExecutor(), backfilled)
    assert (again.feature_rows, again.label_rows) == (0, 0)  # incremental, as the inline path is


async def test_workers_load_the_training_matrix_from_timescaledb_and_train_one_side_with_lightgbm_dask(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    with quiet:
        backfilled = await run_backfill(settings, quiet, url=db_url)
    await _derive_with(settings, db_url, None, backfilled)
    calc = FeatureCalculator()
    async with open_historical(settings, url=db_url) as ctx:
        data = await load_timeframe(ctx, calc, Timeframe.M1, None, None)
        tokens = [i.instrument_token for i in await select_universe(ctx.instruments, ctx.options.symbols, ())]
    names = trainable_features(list(calc.names))
    here = training_set_of(
        data.bars, data.labels, feature_set=calc.feature_set, timeframe="1m", feature_names=names
    )
    jobs = [
        PartitionJob(db_url, t, Timeframe.M1, calc.feature_set, tuple(names), calc.warmup, 1) for t in tokens
    ]

    # lightgbm.dask once hung here for good (LightGBM#4942): the fit has a deadline of its own, and the
    # watchdog ends the run with every thread's stack should anything else on the cluster hang.
    with hang_watchdog(FIT_DEADLINE_S + RESTART_TIMEOUT_S + 300):
        cluster = await asyncio.to_thread(
            LocalCluster, n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
        try:
            client = await asyncio.to_thread(Client, cluster)
            try:
                parts = await asyncio.to_thread(
                    lambda: client.gather(client.map(load_training_partition, jobs, pure=False))
                )
                loads = [functools.partial(load_training_partition, job) for job in jobs]
                booster = await asyncio.to_thread(
                    functools.partial(
                        fit_distributed,
                        client,
                        loads,
                        params=lgb_params(TUNED_DEFAULTS, 7),
                        num_boost_round=10,
                        feature_names=names,
                        timeout_s=FIT_DEADLINE_S,
                    )
                )
            finally:
                await asyncio.to_thread(client.close)
        finally:
            await asyncio.to_thread(cluster.close)

    # Each worker's partition is exactly that instrument's rows of the matrix the client would build.
    assert sum(len(p) for p in parts) == len(here) > 0
    for token, part in zip(tokens, parts, strict=True):
        mine = here.token == token
        assert np.array_equal(part.x, here.x[mine], equal_nan=True)
        assert np.array_equal(part.y, here.y(1)[mine])
    assert booster.num_trees() > 0 and booster.feature_name() == names
