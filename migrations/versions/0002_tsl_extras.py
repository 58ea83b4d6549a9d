"""TSL-only extras: compression on ticks and candles, retention policy on ticks.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01

Only the TSL ("timescale" license) build supports these (timescale.md section 1). On the Apache build
(Debian, our tests) the revision logs one line and does nothing; retention there is `tickwise db
retention` (drop_chunks).
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
    if not _is_tsl():
        log.info("timescaledb license is not 'timescale': skipping compression and retention policies")
        return
    op.execute(
        "ALTER TABLE ticks SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument_token', "
        "timescaledb.compress_orderby = 'time DESC')"
    )
    op.execute("SELECT add_compression_policy('ticks', INTERVAL '2 days', if_not_exists => TRUE)")
    op.execute(
        "ALTER TABLE candles SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'instrument_token, timeframe', timescaledb.compress_orderby = 'time DESC')"
    )
    op.execute("SELECT add_compression_policy('candles', INTERVAL '90 days', if_not_exists => TRUE)")
    op.execute("SELECT add_retention_policy('ticks', INTERVAL '7 days', if_not_exists => TRUE)")


def downgrade() -> None:
    if not _is_tsl():
        return
    op.execute("SELECT remove_retention_policy('ticks', if_exists => TRUE)")
    op.execute("SELECT remove_compression_policy('candles', if_exists => TRUE)")
    op.execute("SELECT remove_compression_policy('ticks', if_exists => TRUE)")
    op.execute("ALTER TABLE candles SET (timescaledb.compress = false)")
    op.execute("ALTER TABLE ticks SET (timescaledb.compress = false)")
