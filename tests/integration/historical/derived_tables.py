"""The tables ``derive`` writes, read back as text for exact comparisons (float8 prints its shortest
exact form, so equal text is equal bits, NaN included), and their removal to derive again; and the
small universe and ``derive_plan`` run the derive tests share."""

from __future__ import annotations

from pathlib import Path

import asyncpg

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
from tickwise.ports.hooks import PipelineHooks

# (table, ORDER BY) of every table derive writes.
DERIVED = (
    ("candles", "instrument_token, timeframe, time"),
    ("features", "instrument_token, timeframe, feature_set, time"),
    ("labels", "instrument_token, timeframe, side, time"),
)


async def derived_contents(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """Every derived table's rows as text, in a fixed order."""
    out: dict[str, list[str]] = {}
    async with pool.acquire() as conn:
        for table, order in DERIVED:
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table} t ORDER BY {order}")
            out[table] = [r["row"] for r in rows]
    return out


async def forget_derived(pool: asyncpg.Pool) -> None:
    """Remove what derive wrote, keeping the 1m candles it derives from."""
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM candles WHERE timeframe <> '1m'")
        await conn.execute("DELETE FROM features")
        await conn.execute("DELETE FROM labels")


async def candle_flag_rows(pool: asyncpg.Pool) -> list[str]:
    """Every stored candle flag as text, in a fixed order (``flagged_at``, the wall clock, left out)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            'SELECT (instrument_token, timeframe, time, "check", score, action)::text AS row'
            ' FROM candle_flags ORDER BY instrument_token, timeframe, "check", time'
        )
    return [r["row"] for r in rows]


async def forget_flags(pool: asyncpg.Pool) -> None:
    """Remove the stored candle flags, so the checks write them again."""
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM candle_flags")


def derive_settings(tmp: Path, **compute: str) -> Settings:
    """Three instruments x 6 sessions (test environment) under ``tmp``; ``compute``: more
    ``TICKWISE__...`` overrides, e.g. ``TICKWISE__COMPUTE__SCHEDULER="pool"``."""
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": "[INFY, RELIANCE, TCS]",
        "TICKWISE__TRADING__BACKFILL_DAYS": "6",
        **compute,
    }
    return load_settings(environ=env, environment="test")


async def derive_through_plan(
    settings: Settings,
    db_url: str,
    backfilled: HistoricalSummary,
    *,
    checks: bool = False,
    hooks: PipelineHooks | None = None,
) -> HistoricalSummary:
    """Derive the universe through ``derive_plan`` (``compute.scheduler``: inline, a pool or Dask
    tasks), with the candle checks when ``checks`` (their flags counted on ``hooks``), as ``tickwise
    historical`` does."""
    summary = HistoricalSummary(first_day=backfilled.first_day, last_day=backfilled.last_day)
    async with open_historical(settings, url=db_url) as ctx:
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        async with derive_plan(settings, db_url, ctx.calendar, DeriveSpec.of(ctx.options)) as plan:
            assert (plan.executor is None) == (settings.compute.scheduler == "inline")
            await derive(
                ctx,
                universe,
                Reporter(quiet=True),
                summary,
                quality=candle_quality(settings, ctx.pool, hooks) if checks else None,
                executor=plan.executor,
                task=plan.task,
            )
    return summary


async def backfill_1m(settings: Settings, db_url: str, pool: asyncpg.Pool) -> HistoricalSummary:
    """Backfill the universe (quietly), then remove what it derived: the 1m candles alone remain."""
    quiet = Reporter(quiet=True)
    with quiet:
        backfilled = await run_backfill(settings, quiet, url=db_url)
    await forget_derived(pool)
    return backfilled
