"""Role hardening: the application role exists, Grafana's role is bounded, TEMP is no longer public.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Issue #13 (findings 1 and 10):

* ``tickwise_app`` (``NOSUPERUSER NOCREATEROLE``) is created when missing; after every migration
  ``migrations/env.py`` hands it the database, the ``public`` schema and every table, and gives it
  LOGIN with ``TICKWISE_APP_PASSWORD`` when that is set (docker-compose). The embedded cluster
  creates it itself with a generated password.
* ``tickwise_grafana`` gets ``default_transaction_read_only`` and a ``statement_timeout`` stored on
  the role (a dashboard query cannot run for ever) and loses TEMP: ``TEMPORARY`` on the database is
  revoked from PUBLIC, so only roles granted it (the application role) may create temporary tables.
  Its only write-capable path left would be temp tables; it holds no other privilege but SELECT.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from tickwise.adapters.timescale.roles import APP_ROLE, GRAFANA_ROLE, create_app_role_sql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRAFANA_STATEMENT_TIMEOUT = "30s"


def upgrade() -> None:
    op.execute(create_app_role_sql(APP_ROLE))
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {APP_ROLE}', current_database());
            EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
            EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM {GRAFANA_ROLE}', current_database());
        END
        $$
        """
    )
    op.execute(f"ALTER ROLE {GRAFANA_ROLE} SET default_transaction_read_only = on")
    op.execute(f"ALTER ROLE {GRAFANA_ROLE} SET statement_timeout = '{GRAFANA_STATEMENT_TIMEOUT}'")


def downgrade() -> None:
    op.execute(f"ALTER ROLE {GRAFANA_ROLE} RESET statement_timeout")
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
        END
        $$
        """
    )
    # tickwise_app is kept: it may own the schema by now, and dropping it would drop nothing useful.
