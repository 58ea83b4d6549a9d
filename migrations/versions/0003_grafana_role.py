"""Read-only role for Grafana: SELECT on the tables dashboards read, nothing else.

Revision ID: 0003_grafana_role
Revises: 0002
Create Date: 2025-01-02

Grafana runs whatever SQL a dashboard holds and does not check it is read-only (timescale.md section
6), so its datasource must log in as a role that cannot write. The role ``tickwise_grafana`` is created
NOLOGIN: no password ever lives in a migration. A deployment that wants Grafana to log in sets
``TICKWISE_GRAFANA_PASSWORD`` when it runs ``tickwise db migrate`` (docker-compose does); the role then
gets LOGIN with that password. Run the migration again with another value to rotate it.

Roles are cluster-wide while grants are per database, so everything here is idempotent: an existing
role (e.g. from another database in the same cluster) is reused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tickwise.adapters.timescale.roles import scram_verifier

revision: str = "0003_grafana_role"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"
PASSWORD_ENV = "TICKWISE_GRAFANA_PASSWORD"
READABLE_TABLES = ("instruments", "candles", "features", "labels", "models", "signals", "ticks")


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
            END IF;
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO {ROLE}', current_database());
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(READABLE_TABLES)} TO {ROLE}")
    # A read-only role should stay read-only whatever the session asks for.
    op.execute(f"ALTER ROLE {ROLE} SET default_transaction_read_only = on")
    password = os.environ.get(PASSWORD_ENV, "")
    if password:
        bind = op.get_bind()
        # The password travels as a bound parameter into a transaction-local setting and is quoted
        # server-side by format(%L): it is never spliced into SQL text on the client.
        # Only the SCRAM verifier travels (issue #13): the server never sees the plain password.
        verifier = scram_verifier(password)
        bind.execute(sa.text("SELECT set_config('tickwise.grafana_password', :pw, true)"), {"pw": verifier})
        op.execute(
            f"""
            DO $$
            BEGIN
                EXECUTE format('ALTER ROLE {ROLE} LOGIN PASSWORD %L',
                               current_setting('tickwise.grafana_password'));
            END
            $$
            """
        )
        bind.execute(sa.text("SELECT set_config('tickwise.grafana_password', '', true)"))


def downgrade() -> None:
    op.execute(f"REVOKE SELECT ON {', '.join(READABLE_TABLES)} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM {ROLE}', current_database());
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            DROP ROLE IF EXISTS {ROLE};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            -- Still granted in another database of this cluster: keep the role for it.
            RAISE NOTICE 'role {ROLE} is still used by another database; not dropped';
        END
        $$
        """
    )
