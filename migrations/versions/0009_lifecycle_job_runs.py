"""lifecycle_job_runs: the outcome of each TimescaleDB job that tickwise runs itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

With ``database.lifecycle.run_jobs = tickwise`` (the default) tickwise takes its compression, retention
and continuous-aggregate refresh jobs off TimescaleDB's scheduler, whose runs fail on PostgreSQL 15.19+
(docs/timescaledb.md), and ``tickwise db maintain`` runs them with ``CALL run_job``. One row per job: the
last run's times, whether it succeeded and its error, so a job is run when its schedule interval has
passed and ``tickwise status`` reports a failing one. The lifecycle itself (compression, policies,
continuous aggregates) is not a migration: ``ensure_lifecycle`` re-checks it after every migrate.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS lifecycle_job_runs (
            job_id integer PRIMARY KEY,
            application_name text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            succeeded boolean NOT NULL,
            error text
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS lifecycle_job_runs")
