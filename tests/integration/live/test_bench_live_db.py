"""`tickwise bench live --db`: the real table writers commit into TimescaleDB, then the rows are gone."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from tickwise.adapters.timescale.pool import open_pool
from tickwise.bench.live import window_rows
from tickwise.cli.context import state
from tickwise.cli.main import app

pytestmark = pytest.mark.db


async def _window(url: str) -> tuple[dict[str, int], int]:
    async with open_pool(url, min_size=1, max_size=1) as pool:
        async with pool.acquire() as conn:
            sets = int(await conn.fetchval("SELECT count(*) FROM feature_sets"))
        return await window_rows(pool), sets


def test_bench_live_db_commits_every_row_and_removes_them_after(db_url: str) -> None:
    before, sets_before = asyncio.run(_window(db_url))
    state._settings = None
    try:
        result = CliRunner().invoke(
            app,
            ["bench", "live", "--instruments", "3", "--minutes", "2", "--json"],
            env={"DATABASE_URL": db_url, "TICKWISE_ENV": "test"},
        )
    finally:
        state._settings = None
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["db"] is True and figures["latency_to"] == "committed"
    assert figures["engine_errors"] == 0 and figures["writer_ok"] is True
    committed = figures["db_rows_committed"]
    # 3 instruments x 2 measured minutes: one candle, feature row and signal per bar, all committed.
    assert figures["bars"] == 6
    assert committed["signals"] == committed["candles"] == committed["features"] == 6
    assert figures["signals_written"] == 6
    assert committed["ticks"] == figures["ticks_accepted"] > 0
    assert 0 < figures["ready_ms_p50"] <= figures["latency_ms_p50"] <= figures["latency_ms_p99"]
    assert figures["latency_ms_p99"] <= figures["latency_ms_max"]
    # Cleaned up: nothing of the bench is left in the live tables, nor a feature set it created.
    assert figures["db_rows_left"] == 0
    after, sets_after = asyncio.run(_window(db_url))
    assert before == after == dict.fromkeys(("ticks", "candles", "features", "signals"), 0)
    assert sets_after == sets_before
