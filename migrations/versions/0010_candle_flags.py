"""Candle flags: the data-quality checks' verdict per (instrument, timeframe, bar, check), Grafana read.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Issue #16 ("data you can trust"): ``core.candle_flags`` flags bars (bad prints, outliers, market hours,
continuity) in backfill and live; each flag is one row with the check's ``score`` and the policy's
``action`` (``kept``: recorded only; ``excluded``: dropped from labels and training). A hypertable on
``time`` (30-day chunks like ``candles``); the primary key makes re-checking a history idempotent. The
read-only Grafana role gets SELECT so the market-data dashboard can count flags.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"

DDL = """
CREATE TABLE IF NOT EXISTS candle_flags (
    instrument_token bigint NOT NULL,
    timeframe text NOT NULL CONSTRAINT candle_flags_timeframe_check
        CHECK (timeframe IN ('1m', '5m', '15m', '60m', '1d')),
    time timestamptz NOT NULL,
    "check" text NOT NULL,
    score double precision NOT NULL,
    action text NOT NULL CONSTRAINT candle_flags_action_check CHECK (action IN ('kept', 'excluded')),
    flagged_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT candle_flags_pkey PRIMARY KEY (instrument_token, timeframe, "check", time)
)
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute(
        "SELECT create_hypertable('candle_flags', by_range('time', INTERVAL '30 days'), "
        "create_default_indexes => FALSE, if_not_exists => TRUE)"
    )
    op.execute("CREATE INDEX IF NOT EXISTS candle_flags_time_idx ON candle_flags (time DESC)")
    op.execute(f"GRANT SELECT ON candle_flags TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON candle_flags FROM {ROLE}")
    op.execute("DROP TABLE IF EXISTS candle_flags CASCADE")
