"""Worlds and the universe: which market this database holds, and which instruments runs work on.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04

``world`` holds at most one row (its key column is the constant ``true``): the market the database was
first used with, the simulator (with its seed) or a Kite account (api_key, and the user id once a login
recorded it). Every command that writes market data compares it with the configured market and refuses
to mix them (``bootstrap/world.py``). A database created before this revision has no row; the first
command that writes market data records its world.

``universe`` lists the instruments the last historical run or live session worked on (replaced as a
whole each run), so Grafana's instrument picker offers the configured universe, not every instrument of
the dump. The read-only Grafana role may read both tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "tickwise_grafana"

DDL = """
CREATE TABLE IF NOT EXISTS world (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT world_singleton_check CHECK (singleton),
    kind text NOT NULL CONSTRAINT world_kind_check CHECK (kind IN ('simulator', 'kite')),
    seed integer,
    api_key text,
    user_id text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS universe (
    instrument_token bigint PRIMARY KEY,
    tradingsymbol text NOT NULL,
    exchange text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


def upgrade() -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(f"GRANT SELECT ON world, universe TO {ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS universe")
    op.execute("DROP TABLE IF EXISTS world")
