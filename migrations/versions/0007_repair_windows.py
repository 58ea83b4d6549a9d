"""repair_windows: the live minutes that still need a REST backfill, recorded durably.

Revision ID: 0007
Revises: 0011 (numbered before 0008-0011 but merged after them: the chain, not the number, orders revisions)
Create Date: 2026-12-04

Issue #13, "Live data integrity when a session dies": a live session that ends before it could
repair a span of minutes (a fatal feed error, a lost connection) records the span here BEFORE it
drops the bars inside it; the next ``tickwise live`` of that day repairs every open window through
REST before streaming and sets ``repaired_at``. The Grafana role may read it (a dashboard can show
open windows).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRAFANA_ROLE = "tickwise_grafana"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS repair_windows (
            id bigserial PRIMARY KEY,
            day date NOT NULL,
            start_time timestamptz NOT NULL,
            end_time timestamptz NOT NULL,
            reason text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            repaired_at timestamptz,
            CONSTRAINT repair_windows_range_check CHECK (end_time >= start_time)
        )
        """
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS repair_windows_open_idx ON repair_windows (day, start_time) "
        "WHERE repaired_at IS NULL"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{GRAFANA_ROLE}') THEN
                GRANT SELECT ON repair_windows TO {GRAFANA_ROLE};
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS repair_windows")
