"""reply progress: a reply being streamed is saved as it grows, with the database's time of its last
save, so a reply whose instance died can be found and marked interrupted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portico.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

IN_PROGRESS = "role = 'assistant' AND duration_ms IS NULL"


# A plain nullable column is added in place on SQLite too: `messages` keeps its full-text triggers.
def upgrade() -> None:
    op.add_column("messages", sa.Column("saved_at", portico.models.base.UTCDateTime(timezone=True), nullable=True))
    # Only replies still being written: few rows, read by the sweep.
    op.create_index(
        "ix_messages_in_progress",
        "messages",
        ["saved_at"],
        sqlite_where=sa.text(IN_PROGRESS),
        postgresql_where=sa.text(IN_PROGRESS),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_in_progress", table_name="messages")
    # In place on both (SQLite 3.35+): a batch rebuild would drop the full-text triggers.
    op.execute("ALTER TABLE messages DROP COLUMN saved_at")
