"""TSL-only extras (compression, retention policies): now re-checked after every migration.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01

This revision used to add compression on ticks and candles and a retention policy on ticks when the
server ran the TSL ("timescale" license) build, once. A database migrated under the Apache license and
moved to a TSL build later never got them, because Alembic had already recorded 0002 (issue #15). The
extras now live in ``tickwise.adapters.timescale.lifecycle.ensure_lifecycle``, which
``tickwise.bootstrap.database.migrate`` (``tickwise db migrate``, ``tickwise db up``) runs after every
migration to head: idempotent, for all five hypertables, with continuous aggregates, configurable in
``database.lifecycle``. The upgrade is therefore empty; the downgrade still removes what an older
tickwise added here (each step ``if_exists``, so it is harmless on any build).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _is_tsl() -> bool:
    license_ = op.get_bind().scalar(sa.text("SELECT current_setting('timescaledb.license', true)"))
    return license_ == "timescale"


def upgrade() -> None:
    log.info("TSL extras are applied by ensure_lifecycle after the migration (see this revision's docstring)")


def downgrade() -> None:
    if not _is_tsl():
        return
    op.execute("SELECT remove_retention_policy('ticks', if_exists => TRUE)")
    op.execute("SELECT remove_compression_policy('candles', if_exists => TRUE)")
    op.execute("SELECT remove_compression_policy('ticks', if_exists => TRUE)")
