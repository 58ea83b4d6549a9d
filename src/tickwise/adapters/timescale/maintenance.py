"""Housekeeping on the Apache build: retention by ``drop_chunks`` and server facts for ``db status``."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tickwise.adapters.timescale.schema import HYPERTABLES
from tickwise.domain.errors import StorageError


async def drop_chunks_older_than(pool: asyncpg.Pool, table: str, older_than: timedelta) -> int:
    """Drop whole chunks of hypertable ``table`` whose data is older than ``now() - older_than``.

    Only whole chunks go (the chunk interval is the granularity); returns the number dropped.
    """
    if table not in HYPERTABLES:
        raise StorageError(f"{table!r} is not a hypertable (expected one of {', '.join(HYPERTABLES)})")
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT drop_chunks($1::regclass, older_than => now() - $2::interval)", table, older_than
        )
    return len(rows)


async def server_info(pool: asyncpg.Pool) -> dict[str, str | None]:
    """PostgreSQL and TimescaleDB versions and the TimescaleDB license of the connected server."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS version, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb_version, "
            "current_setting('timescaledb.license', true) AS timescaledb_license"
        )
    assert row is not None
    return dict(row)
