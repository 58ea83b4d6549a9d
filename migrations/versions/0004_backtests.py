"""Backtests: backtest_runs (table), backtest_trades and backtest_equity (hypertables), Grafana read access.

Revision ID: 0004
Revises: 0003_grafana_role
Create Date: 2026-12-04

Money columns are numeric(18, 2): the trade engine rounds every charge to the paisa as a contract note
does, and numeric keeps those figures exact in SQL sums. ``backtest_trades`` is partitioned on
``entry_time``, ``backtest_equity`` on ``time``. The read-only Grafana role (0003) gets SELECT on all
three, so the backtest dashboard works under it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_grafana_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"
TABLES = ("backtest_runs", "backtest_trades", "backtest_equity")
MONEY_COLUMNS = ("gross", "brokerage", "stt", "exchange", "sebi", "stamp", "gst", "slippage", "net")

DDL = f"""
CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    "from" timestamptz NOT NULL,
    "to" timestamptz NOT NULL,
    model_version text NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    metrics jsonb NOT NULL DEFAULT '{{}}'::jsonb
);
CREATE TABLE IF NOT EXISTS backtest_trades (
    run_id text NOT NULL,
    instrument_token bigint NOT NULL,
    side smallint NOT NULL CONSTRAINT backtest_trades_side_check CHECK (side IN (-1, 1)),
    quantity integer NOT NULL,
    entry_time timestamptz NOT NULL,
    entry_price double precision NOT NULL,
    exit_time timestamptz NOT NULL,
    exit_price double precision NOT NULL,
    exit_reason text NOT NULL CONSTRAINT backtest_trades_exit_reason_check
        CHECK (exit_reason IN ('pt', 'sl', 'horizon', 'square_off', 'risk')),
    {", ".join(f"{c} numeric(18, 2) NOT NULL" for c in MONEY_COLUMNS)},
    signal_time timestamptz NOT NULL,
    model_version text NOT NULL,
    confidence double precision
);
CREATE INDEX IF NOT EXISTS backtest_trades_run_entry_idx ON backtest_trades (run_id, entry_time);
CREATE TABLE IF NOT EXISTS backtest_equity (
    run_id text NOT NULL,
    time timestamptz NOT NULL,
    equity numeric(18, 2) NOT NULL,
    drawdown double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS backtest_equity_run_time_idx ON backtest_equity (run_id, time)
"""


def upgrade() -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(
        "SELECT create_hypertable('backtest_trades', by_range('entry_time', INTERVAL '30 days'), "
        "create_default_indexes => FALSE, if_not_exists => TRUE)"
    )
    op.execute(
        "SELECT create_hypertable('backtest_equity', by_range('time', INTERVAL '30 days'), "
        "create_default_indexes => FALSE, if_not_exists => TRUE)"
    )
    # The role exists after 0003 (created there if missing); grants are per table, so add ours.
    op.execute(f"GRANT SELECT ON {', '.join(TABLES)} TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON {', '.join(TABLES)} FROM {ROLE}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
