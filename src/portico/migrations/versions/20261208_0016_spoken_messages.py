"""Spoken messages (issue 23): a guest's message heard from audio records the audio's length.

The audio itself is transcribed and dropped, never stored; NULL is a typed message (all before this).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
# 0015 is another branch's; the chain is put in order when both are merged.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("audio_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("audio_ms")
