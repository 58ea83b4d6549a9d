"""Every SQL block of docs/sql-cookbook.md runs on a migrated, seeded database and returns rows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from grafana_seed import seed

COOKBOOK = Path(__file__).resolve().parents[2] / "docs" / "sql-cookbook.md"
BLOCKS = re.findall(r"```sql\n(.*?)```", COOKBOOK.read_text(), flags=re.S)
# The numbered sections ("## 16. ..."): each holds one query.
SECTIONS = re.findall(r"^## \d+\. ", COOKBOOK.read_text(), flags=re.M)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(admin_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    # The superuser: only it may SET ROLE to the Grafana role (the app role is not a member).
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await seed(conn)
            yield conn
        finally:
            await transaction.rollback()


def test_the_cookbook_has_its_queries() -> None:
    assert len(BLOCKS) == len(SECTIONS) >= 16


@pytest.mark.db
@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1))
async def test_cookbook_query_returns_rows(seeded: asyncpg.Connection, number: int) -> None:
    sql = BLOCKS[number - 1]
    savepoint = seeded.transaction()
    await savepoint.start()
    try:
        # Read-only, as a user exploring the data would be (and as Grafana's role is).
        await seeded.execute("SET LOCAL ROLE tickwise_grafana")
        rows = await seeded.fetch(sql)
    finally:
        await savepoint.rollback()
    assert rows, f"query {number} returned nothing:\n{sql}"
