"""The backtest tables as the contract names them, partitioned as documented, readable by Grafana."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.db

CONTRACT = {
    "backtest_runs": {"run_id", "created_at", "from", "to", "model_version", "params", "metrics"},
    "backtest_trades": {
        "run_id",
        "instrument_token",
        "side",
        "quantity",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "exit_reason",
        "gross",
        "brokerage",
        "stt",
        "exchange",
        "sebi",
        "stamp",
        "gst",
        "slippage",
        "net",
        "signal_time",
        "model_version",
    },
    "backtest_equity": {"run_id", "time", "equity", "drawdown"},
}


async def test_backtest_tables_have_the_contract_columns(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for table, columns in CONTRACT.items():
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
            )
            assert columns <= {r["column_name"] for r in rows}, table


async def test_trades_and_equity_are_hypertables_on_their_time_columns(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions "
            "WHERE hypertable_name LIKE 'backtest%'"
        )
    assert {r["hypertable_name"]: r["column_name"] for r in rows} == {
        "backtest_trades": "entry_time",
        "backtest_equity": "time",
    }


async def test_the_grafana_role_may_read_but_not_write_backtests(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for table in CONTRACT:
            assert await conn.fetchval("SELECT has_table_privilege('tickwise_grafana', $1, 'SELECT')", table)
            assert not await conn.fetchval(
                "SELECT has_table_privilege('tickwise_grafana', $1, 'INSERT')", table
            )


async def test_an_unknown_exit_reason_is_refused(clean_db: asyncpg.Pool) -> None:
    async with clean_db.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO backtest_trades (run_id, instrument_token, side, quantity, entry_time, entry_price, "
                "exit_time, exit_price, exit_reason, gross, brokerage, stt, exchange, sebi, stamp, gst, slippage, "
                "net, signal_time, model_version) VALUES ('r', 1, 1, 1, now(), 1, now(), 1, 'panic', "
                "0, 0, 0, 0, 0, 0, 0, 0, 0, now(), 'm')"
            )
