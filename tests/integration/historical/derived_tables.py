"""The tables ``derive`` writes, read back as text for exact comparisons (float8 prints its shortest
exact form, so equal text is equal bits, NaN included), and their removal to derive again."""

from __future__ import annotations

import asyncpg

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
