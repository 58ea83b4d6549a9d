"""Meta-labeling: ``signals.meta_prob`` and ``signals.meta_size``.

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-05

Issue #16 (meta-labeling): a model bundle may carry a secondary (meta) model that predicts whether a
signal's trade clears the cost threshold. Its probability (``meta_prob``) and the position scale it gives
(``meta_size``, 0..1 in steps of ``signals.meta.step``) are stored with the signal, where the trade engine
reads them; NULL for flat signals and for models without a meta model. Two nullable columns without a
default: adding them rewrites nothing, and compressed chunks accept them.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE signals ADD COLUMN IF NOT EXISTS meta_prob double precision")
    op.execute("ALTER TABLE signals ADD COLUMN IF NOT EXISTS meta_size double precision")


def downgrade() -> None:
    op.execute("ALTER TABLE signals DROP COLUMN IF EXISTS meta_size")
    op.execute("ALTER TABLE signals DROP COLUMN IF EXISTS meta_prob")
