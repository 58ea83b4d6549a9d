"""Paper trading: paper_signals, the signals a paper session acted on, as its engine was fed them.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-05

A bar re-scored after the paper engine acted on its signal (late ticks, a REST repair) is upserted in
``signals``; the paper session keeps the version it acted on. This table records that version with
its barrier levels, so ``tickwise backtest --signals paper --paper-run RUN`` replays exactly what the
session traded (docs/backtest.md, "Paper trading"). The read-only Grafana role gets SELECT on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"

DDL = """
CREATE TABLE IF NOT EXISTS paper_signals (
    run_id text NOT NULL,
    instrument_token bigint NOT NULL,
    time timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    direction smallint NOT NULL CONSTRAINT paper_signals_direction_check CHECK (direction IN (-1, 1)),
    confidence double precision NOT NULL,
    size double precision,
    meta_size double precision,
    model_version text NOT NULL,
    take_profit double precision NOT NULL,
    stop_loss double precision NOT NULL,
    horizon_end timestamptz NOT NULL,
    lot_size integer NOT NULL,
    CONSTRAINT paper_signals_pkey PRIMARY KEY (run_id, instrument_token, time, model_version)
)
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute(f"GRANT SELECT ON paper_signals TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON paper_signals FROM {ROLE}")
    op.execute("DROP TABLE IF EXISTS paper_signals CASCADE")
