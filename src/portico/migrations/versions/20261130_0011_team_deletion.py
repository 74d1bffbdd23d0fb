"""a team can be deleted: it is marked at once (its assistants cut off, its members out) and the purge
erases it with everything it owned later

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portico.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teams", sa.Column("deleted_at", portico.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A plain column is dropped in place on both (SQLite 3.35+). A team deleted and not purged yet
    # stays as it was left: no members, its assistants deleted.
    op.execute("ALTER TABLE teams DROP COLUMN deleted_at")
