"""Signal members: per ensemble signal, each member timeframe's model version and probabilities.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-05

Issue #16 ("several timeframes and an ensemble"): an ensemble signal (``signals`` row whose
``model_version`` is an ensemble version) combines the latest probabilities of one model per signal
timeframe available at the bar's close. ``signal_members`` records, for each such signal, each member's
timeframe, model version, the open of the member bar used and its long/short probabilities. A
hypertable on ``time`` (30-day chunks like ``signals``); the primary key (the signal's contract key plus
the member timeframe) makes re-running the ensemble idempotent. The read-only Grafana role may read it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"
_TIMEFRAMES = "('1m', '5m', '15m', '60m', '1d')"

DDL = f"""
CREATE TABLE IF NOT EXISTS signal_members (
    instrument_token bigint NOT NULL,
    timeframe text NOT NULL CONSTRAINT signal_members_timeframe_check CHECK (timeframe IN {_TIMEFRAMES}),
    time timestamptz NOT NULL,
    model_version text NOT NULL,
    mode text NOT NULL CONSTRAINT signal_members_mode_check CHECK (mode IN ('historical', 'live')),
    member_timeframe text NOT NULL
        CONSTRAINT signal_members_member_timeframe_check CHECK (member_timeframe IN {_TIMEFRAMES}),
    member_version text NOT NULL,
    member_time timestamptz NOT NULL,
    p_long double precision NOT NULL,
    p_short double precision NOT NULL,
    CONSTRAINT signal_members_p_check CHECK (p_long >= 0 AND p_long <= 1 AND p_short >= 0 AND p_short <= 1),
    CONSTRAINT signal_members_pkey
        PRIMARY KEY (instrument_token, timeframe, model_version, mode, member_timeframe, time)
)
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute(
        "SELECT create_hypertable('signal_members', by_range('time', INTERVAL '30 days'), "
        "create_default_indexes => FALSE, if_not_exists => TRUE)"
    )
    op.execute("CREATE INDEX IF NOT EXISTS signal_members_time_idx ON signal_members (time DESC)")
    op.execute(f"GRANT SELECT ON signal_members TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON signal_members FROM {ROLE}")
    op.execute("DROP TABLE IF EXISTS signal_members CASCADE")
