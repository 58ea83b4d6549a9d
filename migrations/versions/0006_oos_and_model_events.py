"""Out-of-sample history and model governance: ``signals.sample``, ``models.status = 'fold'``, and the
append-only ``model_events`` audit trail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

- ``signals.sample`` says whether the signal's bar lay outside its model's training window plus the
  embargo (``oos``) or not (``in_sample``). Every historical row written before this revision came from
  the champion scoring its own training window, so existing rows are backfilled ``in_sample``; a live
  row is marked ``oos`` when its bar comes after its model's ``trained_to`` (the model existed before
  the bar did). New rows default to ``in_sample``: nothing is out of sample unless the writer says so.
- ``models.status`` gains ``fold``: one walk-forward fold model per step of ``tickwise historical``.
- ``model_events`` is a hypertable that only grows: a trigger rejects every UPDATE and DELETE, and the
  Grafana role may read it. It is deliberately not in ``schema.HYPERTABLES``, so ``tickwise db
  retention`` cannot drop_chunks the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRAFANA_ROLE = "tickwise_grafana"
EVENTS = ("trained", "promoted", "retired", "rolled_back", "rejected")
STATUSES = ("champion", "challenger", "retired", "fold")


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE signals ADD COLUMN IF NOT EXISTS sample TEXT NOT NULL DEFAULT 'in_sample' "
        "CONSTRAINT signals_sample_check CHECK (sample IN ('oos', 'in_sample'))"
    )
    op.execute(
        """
        UPDATE signals s SET sample = 'oos'
        FROM models m
        WHERE s.model_version = m.model_version AND s.mode = 'live' AND s.time > m.trained_to
        """
    )
    op.execute("ALTER TABLE models DROP CONSTRAINT IF EXISTS models_status_check")
    op.execute(
        f"ALTER TABLE models ADD CONSTRAINT models_status_check CHECK (status IN ({_quoted(STATUSES)}))"
    )
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS model_events (
            time TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
            model_version TEXT NOT NULL REFERENCES models (model_version),
            event TEXT NOT NULL,
            reason TEXT DEFAULT '' NOT NULL,
            metrics JSONB DEFAULT '{{}}'::jsonb NOT NULL,
            actor TEXT DEFAULT '' NOT NULL,
            CONSTRAINT model_events_event_check CHECK (event IN ({_quoted(EVENTS)}))
        )
        """
    )
    op.execute(
        "SELECT create_hypertable('model_events', by_range('time', INTERVAL '90 days'), if_not_exists => TRUE)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS model_events_version_time_idx ON model_events (model_version, time DESC)"
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION model_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'model_events is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute("DROP TRIGGER IF EXISTS model_events_append_only ON model_events")
    op.execute(
        "CREATE TRIGGER model_events_append_only BEFORE UPDATE OR DELETE ON model_events "
        "FOR EACH ROW EXECUTE FUNCTION model_events_append_only()"
    )
    op.execute(f"GRANT SELECT ON model_events TO {GRAFANA_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON model_events FROM {GRAFANA_ROLE}")
    op.execute("DROP TABLE IF EXISTS model_events")
    op.execute("DROP FUNCTION IF EXISTS model_events_append_only()")
    op.execute("UPDATE models SET status = 'retired' WHERE status = 'fold'")
    op.execute("ALTER TABLE models DROP CONSTRAINT IF EXISTS models_status_check")
    op.execute(
        "ALTER TABLE models ADD CONSTRAINT models_status_check "
        "CHECK (status IN ('champion', 'challenger', 'retired'))"
    )
    op.execute("ALTER TABLE signals DROP COLUMN IF EXISTS sample")
