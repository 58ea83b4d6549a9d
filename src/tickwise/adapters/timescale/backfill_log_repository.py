"""Backfill bookkeeping: which (instrument, timeframe, day) has been fetched, and how many rows it had."""

from __future__ import annotations

from datetime import date

import asyncpg

from tickwise.domain.timeframe import Timeframe


class TimescaleBackfillLogRepository:
    """BackfillLogRepository on the ``backfill_log`` table (pk instrument_token, timeframe, day)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, instrument_token: int, timeframe: Timeframe, day: date, rows: int) -> None:
        """Remember that ``day`` was fetched (re-fetching overwrites the row count and time)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO backfill_log (instrument_token, timeframe, day, rows) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (instrument_token, timeframe, day) DO UPDATE SET rows = EXCLUDED.rows, fetched_at = now()",
                instrument_token,
                str(timeframe),
                day,
                rows,
            )

    async def done_days(
        self, instrument_token: int, timeframe: Timeframe, start: date, end: date
    ) -> set[date]:
        """Days in ``[start, end]`` (inclusive) already fetched for this instrument and timeframe."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT day FROM backfill_log WHERE instrument_token = $1 AND timeframe = $2 AND day BETWEEN $3 AND $4",
                instrument_token,
                str(timeframe),
                start,
                end,
            )
        return {r["day"] for r in rows}
