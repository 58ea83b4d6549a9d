"""The ``world`` table (one row at most: the market this database holds) and the ``universe`` table."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from tickwise.domain.instrument import Instrument
from tickwise.domain.world import World


class TimescaleWorldRepository:
    """Record and read the database's world; maintain the universe the last run worked on."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def recorded(self) -> World | None:
        """The recorded world (None: the database was never used for market data)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT kind, seed, api_key, user_id FROM world")
        return _world(row) if row is not None else None

    async def claim(self, world: World) -> World:
        """Record ``world`` when none is recorded; return the world the database holds.

        One statement, so two commands starting at once on a fresh database cannot both record theirs.
        A Kite user id learnt after the first use is filled in (never overwritten).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO world (kind, seed, api_key, user_id) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (singleton) DO NOTHING",
                world.kind,
                world.seed,
                world.api_key,
                world.user_id,
            )
            row = await conn.fetchrow("SELECT kind, seed, api_key, user_id FROM world FOR UPDATE")
            assert row is not None  # inserted above or already there  # nosec B101
            held = _world(row)
            if world.user_id and not held.user_id and held.same_market(world):
                await conn.execute("UPDATE world SET user_id = $1", world.user_id)
                held = World(held.kind, held.seed, held.api_key, world.user_id)
        return held

    async def replace_universe(self, instruments: Sequence[Instrument]) -> int:
        """Make ``universe`` exactly ``instruments``; rows written."""
        rows = [(i.instrument_token, i.tradingsymbol, i.exchange) for i in instruments]
        async with self._pool.acquire() as conn, conn.transaction():
            # Shards start at once and each replaces the universe: one replace at a time, or the later
            # DELETE misses the rows the earlier one inserted and its INSERT fails on the key.
            await conn.execute("LOCK TABLE universe IN SHARE ROW EXCLUSIVE MODE")
            await conn.execute("DELETE FROM universe")
            if rows:
                await conn.executemany(
                    "INSERT INTO universe (instrument_token, tradingsymbol, exchange) VALUES ($1, $2, $3)",
                    rows,
                )
        return len(rows)


def _world(row: asyncpg.Record) -> World:
    return World(kind=row["kind"], seed=row["seed"], api_key=row["api_key"], user_id=row["user_id"])
