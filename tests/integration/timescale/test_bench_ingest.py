from __future__ import annotations

import asyncpg
import pytest

from tickwise.bench.ingest import run_ingest_bench

pytestmark = pytest.mark.db


async def test_ingest_bench_reports_all_three_rates_and_leaves_no_rows_behind(
    clean_db: asyncpg.Pool, db_url: str
) -> None:
    figures = await run_ingest_bench(db_url, 3_000, instruments=5)
    assert figures["rows"] == 3_000
    for key in ("repo_fresh_rows_per_s", "repo_rewrite_rows_per_s", "psql_copy_rows_per_s"):
        assert figures[key] > 0
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM candles") == 0
