"""Paper trading: paper_trades (hypertable, the backtest_trades columns) and paper_positions (table).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

`tickwise live --paper` runs the backtest's trade engine on live signals and ticks. Its closed trades
keep the contract's ``backtest_trades`` column names (``run_id`` is the paper session id), so the
backtest queries and the parity test compare them column for column; money stays numeric(18, 2), to
the paisa. ``paper_positions`` is the session's book: a row when a position opens, ``closed_at`` and
``exit_reason`` when it closes. The read-only Grafana role gets SELECT on both.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"
TABLES = ("paper_trades", "paper_positions")
MONEY_COLUMNS = ("gross", "brokerage", "stt", "exchange", "sebi", "stamp", "gst", "slippage", "net")

DDL = f"""
CREATE TABLE IF NOT EXISTS paper_trades (
    run_id text NOT NULL,
    instrument_token bigint NOT NULL,
    side smallint NOT NULL CONSTRAINT paper_trades_side_check CHECK (side IN (-1, 1)),
    quantity integer NOT NULL,
    entry_time timestamptz NOT NULL,
    entry_price double precision NOT NULL,
    exit_time timestamptz NOT NULL,
    exit_price double precision NOT NULL,
    exit_reason text NOT NULL CONSTRAINT paper_trades_exit_reason_check
        CHECK (exit_reason IN ('pt', 'sl', 'horizon', 'square_off', 'risk')),
    {", ".join(f"{c} numeric(18, 2) NOT NULL" for c in MONEY_COLUMNS)},
    signal_time timestamptz NOT NULL,
    model_version text NOT NULL,
    confidence double precision
);
CREATE INDEX IF NOT EXISTS paper_trades_run_entry_idx ON paper_trades (run_id, entry_time);
CREATE TABLE IF NOT EXISTS paper_positions (
    run_id text NOT NULL,
    instrument_token bigint NOT NULL,
    side smallint NOT NULL CONSTRAINT paper_positions_side_check CHECK (side IN (-1, 1)),
    quantity integer NOT NULL,
    entry_time timestamptz NOT NULL,
    entry_price double precision NOT NULL,
    take_profit double precision NOT NULL,
    stop_loss double precision NOT NULL,
    horizon_end timestamptz NOT NULL,
    signal_time timestamptz NOT NULL,
    model_version text NOT NULL,
    confidence double precision,
    closed_at timestamptz,
    exit_reason text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT paper_positions_pkey PRIMARY KEY (run_id, instrument_token, entry_time)
)
"""


def upgrade() -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(
        "SELECT create_hypertable('paper_trades', by_range('entry_time', INTERVAL '30 days'), "
        "create_default_indexes => FALSE, if_not_exists => TRUE)"
    )
    # The role exists after 0003 (created there if missing); grants are per table, so add ours.
    op.execute(f"GRANT SELECT ON {', '.join(TABLES)} TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON {', '.join(TABLES)} FROM {ROLE}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
