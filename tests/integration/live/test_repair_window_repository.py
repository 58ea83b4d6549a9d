"""repair_windows (migration 0007): open windows recorded, read back per day, closed once superseded."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg
import pytest

from tickwise.adapters.timescale.repair_window_repository import TimescaleRepairWindowRepository
from tickwise.domain.time import IST

pytestmark = pytest.mark.db

DAY = date(2025, 1, 6)
T = datetime(2025, 1, 6, 10, 0, tzinfo=IST)
M = timedelta(minutes=1)


async def test_recorded_windows_are_open_until_a_run_supersedes_them(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleRepairWindowRepository(clean_db)
    await repo.record(DAY, T + 5 * M, T + 7 * M, "fatal feed error")
    await repo.record(DAY, T, T + 2 * M, "not repaired before the session ended")
    await repo.record(DAY + timedelta(days=1), T + timedelta(days=1), T + timedelta(days=1), "other day")
    assert await repo.open_windows(DAY) == [(T, T + 2 * M), (T + 5 * M, T + 7 * M)]
    assert await repo.mark_repaired(DAY, T + 3 * M, T + 60 * M) == 1
    assert await repo.open_windows(DAY) == [(T, T + 2 * M)]
    assert await repo.mark_repaired(DAY, T, T + 60 * M) == 1
    assert await repo.open_windows(DAY) == []
    assert len(await repo.open_windows(DAY + timedelta(days=1))) == 1


async def test_only_windows_recorded_before_a_given_instant_are_closed_when_asked(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleRepairWindowRepository(clean_db)
    await repo.record(DAY, T, T + M, "an earlier run")
    assert await repo.mark_repaired(DAY, T, T + 60 * M, recorded_before=datetime(2000, 1, 1, tzinfo=IST)) == 0
    assert await repo.mark_repaired(DAY, T, T + 60 * M, recorded_before=datetime(2100, 1, 1, tzinfo=IST)) == 1


async def test_a_window_that_ends_before_it_starts_is_refused(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleRepairWindowRepository(clean_db)
    with pytest.raises(asyncpg.CheckViolationError):
        await repo.record(DAY, T, T - M, "backwards")


async def test_the_grafana_role_may_read_repair_windows_but_not_write_them(admin_pool: asyncpg.Pool) -> None:
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE tickwise_grafana")
            await conn.fetch("SELECT * FROM repair_windows LIMIT 1")
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute("DELETE FROM repair_windows")
        finally:
            await transaction.rollback()
