"""RepairWindowRepository on the ``repair_windows`` table (migration 0007)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


class TimescaleRepairWindowRepository:
    """Open repair windows of the live mode, one row per recorded window."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, day: date, start: datetime, end: datetime, reason: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO repair_windows (day, start_time, end_time, reason) VALUES ($1, $2, $3, $4)",
                day,
                start,
                end,
                reason,
            )

    async def open_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT start_time, end_time FROM repair_windows WHERE day = $1 AND repaired_at IS NULL "
                "ORDER BY start_time, end_time",
                day,
            )
        return [(r["start_time"], r["end_time"]) for r in rows]

    async def mark_repaired(
        self, day: date, start: datetime, end: datetime, *, recorded_before: datetime | None = None
    ) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE repair_windows SET repaired_at = now() WHERE day = $1 AND repaired_at IS NULL "
                "AND start_time >= $2 AND end_time <= $3 AND ($4::timestamptz IS NULL OR recorded_at < $4)",
                day,
                start,
                end,
                recorded_before,
            )
        return int(status.split()[-1])
