"""``compute.scheduler: pool``: derive on a pool of spawned worker processes, each instrument's task
started as soon as its candles are checked, writes exactly the rows of the inline pass: roll-ups,
features, labels and candle flags, compared as text (float8 prints its shortest exact form, so equal
text is equal bits, NaN included)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from derived_tables import candle_flag_rows, derived_contents, forget_derived, forget_flags

from tickwise.bootstrap.compute import derive_plan
from tickwise.bootstrap.historical import (
    HistoricalSummary,
    Reporter,
    candle_quality,
    open_historical,
    run_backfill,
)
from tickwise.config import Settings, load_settings
from tickwise.pipelines.historical.run import DeriveSpec, derive
from tickwise.pipelines.universe import select_universe
from tickwise.ports.compute import TaskPool

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _settings(tmp: Path, scheduler: str = "inline") -> Settings:
    env = {
        "TICKWISE__COMPUTE__SCHEDULER": scheduler,
        "TICKWISE__COMPUTE__WORKERS": "2",
        "TICKWISE__COMPUTE__CHUNK_SESSIONS": "2",  # 6 sessions: three chunks per instrument
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": "[INFY, RELIANCE, TCS]",
        "TICKWISE__TRADING__BACKFILL_DAYS": "6",
    }
    return load_settings(environ=env, environment="test")


async def _derive_with_plan(
    settings: Settings, db_url: str, backfilled: HistoricalSummary
) -> HistoricalSummary:
    summary = HistoricalSummary(first_day=backfilled.first_day, last_day=backfilled.last_day)
    async with open_historical(settings, url=db_url) as ctx:
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        async with derive_plan(settings, db_url, ctx.calendar, DeriveSpec.of(ctx.options)) as plan:
            if settings.compute.scheduler == "pool":
                assert isinstance(plan.executor, TaskPool)
            await derive(
                ctx,
                universe,
                Reporter(quiet=True),
                summary,
                quality=candle_quality(settings, ctx.pool),
                executor=plan.executor,
                task=plan.task,
            )
    return summary


async def test_a_pool_of_two_processes_derives_the_rows_and_flags_of_the_inline_pass_bit_for_bit(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    inline = _settings(tmp_path)
    quiet = Reporter(quiet=True)
    with quiet:
        backfilled = await run_backfill(inline, quiet, url=db_url)
    await forget_derived(clean_db)
    await forget_flags(clean_db)

    one = await _derive_with_plan(inline, db_url, backfilled)
    expected, flags = await derived_contents(clean_db), await candle_flag_rows(clean_db)
    assert one.feature_rows > 0 and one.label_rows > 0 and sum(one.rollup_rows.values()) > 0

    await forget_derived(clean_db)
    await forget_flags(clean_db)
    pooled = await _derive_with_plan(_settings(tmp_path, "pool"), db_url, backfilled)

    assert await derived_contents(clean_db) == expected
    assert await candle_flag_rows(clean_db) == flags
    assert (pooled.feature_rows, pooled.label_rows, pooled.derive_chunks) == (
        one.feature_rows,
        one.label_rows,
        one.derive_chunks,
    )
    assert pooled.rollup_rows == one.rollup_rows
    assert pooled.candle_flags is not None and one.candle_flags is not None
    assert vars(pooled.candle_flags) == vars(one.candle_flags)
    assert pooled.integrity is not None and one.integrity is not None
    assert vars(pooled.integrity) == vars(one.integrity)


async def test_a_pool_rerun_writes_nothing_new_as_the_inline_pass_does(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, "pool")
    quiet = Reporter(quiet=True)
    with quiet:
        backfilled = await run_backfill(settings, quiet, url=db_url)
    await forget_derived(clean_db)
    first = await _derive_with_plan(settings, db_url, backfilled)
    assert first.feature_rows > 0 and first.label_rows > 0
    again = await _derive_with_plan(settings, db_url, backfilled)
    assert (again.feature_rows, again.label_rows) == (0, 0)
