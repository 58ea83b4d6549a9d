from __future__ import annotations

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from tickwise.bootstrap.database import alembic_config, current_revision, migrate

pytestmark = pytest.mark.db


async def test_all_hypertables_exist_with_their_chunk_intervals(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions ORDER BY 1"
        )
    got = {r["hypertable_name"]: r["time_interval"].days for r in rows}
    assert got == {
        "backtest_equity": 30,
        "backtest_trades": 30,
        "candle_flags": 30,
        "candles": 30,
        "features": 7,
        "labels": 30,
        "model_events": 90,
        "paper_trades": 30,
        "signal_members": 30,
        "signals": 30,
        "ticks": 1,
    }


async def test_contract_columns_exist(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
    cols: dict[str, set[str]] = {}
    for r in rows:
        cols.setdefault(r["table_name"], set()).add(r["column_name"])
    assert {
        "instrument_token",
        "timeframe",
        "time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "oi",
        "source",
        "obi_5",
    } <= cols["candles"]
    assert {
        "t1",
        "t1_max",
        "ret",
        "exit_price",
        "barrier",
        "ambiguous",
        "weight",
        "meta",
        "side",
        "label",
    } <= cols["labels"]
    assert {
        "available_at",
        "model_version",
        "direction",
        "confidence",
        "mode",
        "feature_set",
        "latency_ms",
        "created_at",
        "size",
    } <= cols["signals"]
    assert {"bid_price_1", "ask_qty_5", "bid_orders_3", "received_at", "volume_traded"} <= cols["ticks"]
    assert {"status", "label_spec", "feature_spec", "artifact_path", "metrics", "params"} <= cols["models"]
    assert {"active", "first_seen", "last_seen", "updated_at", "tick_size"} <= cols["instruments"]
    assert {"day", "rows", "fetched_at"} <= cols["backfill_log"]


def test_migrating_twice_is_harmless(db_url: str) -> None:
    migrate(db_url)
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    assert current_revision(db_url) == head
