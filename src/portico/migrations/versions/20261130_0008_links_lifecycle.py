"""links on the owner's terms: a widget id apart from the public id, an access code and an end
date on the public link, and private links that pause and expire

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portico.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# Plain nullable columns (and one NOT NULL with a default) are added in place on SQLite too; only
# `assistants` is rebuilt (batch mode), for the widget id's NOT NULL and UNIQUE. It has no triggers.
def upgrade() -> None:
    op.add_column("assistants", sa.Column("widget_id", sa.String(length=32), nullable=True))
    # Existing embeds carry the public id: it becomes the first widget id, so they keep working.
    op.execute("UPDATE assistants SET widget_id = public_id")
    op.add_column("assistants", sa.Column("access_code_hash", sa.String(length=200), nullable=True))
    op.add_column(
        "assistants",
        sa.Column("public_link_expires_at", portico.models.base.UTCDateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.alter_column("widget_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_assistants_widget_id"), ["widget_id"])
    op.add_column("private_links", sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column(
        "private_links", sa.Column("expires_at", portico.models.base.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("private_links", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("paused")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_assistants_widget_id"), type_="unique")
        batch_op.drop_column("public_link_expires_at")
        batch_op.drop_column("access_code_hash")
        batch_op.drop_column("widget_id")
