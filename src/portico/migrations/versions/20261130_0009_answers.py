"""answers: each reply keeps the knowledge sections it drew on and whether the knowledge answered,
guests rate replies (up or down, with a reason and a comment), the hourly rollups count those
ratings, and each version keeps its starter questions beside its greeting

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portico.models.base
from portico.vocabulary import FeedbackReason, Rating, sql_in

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

IN_PROGRESS = "role = 'assistant' AND duration_ms IS NULL"
RATED = "rating IS NOT NULL"
CHECKS = (
    ("ck_messages_rating", f"rating IS NULL OR rating IN {sql_in(Rating)}"),
    ("ck_messages_rating_reason", f"rating_reason IS NULL OR rating_reason IN {sql_in(FeedbackReason)}"),
    ("ck_messages_rating_comment", "rating_comment IS NULL OR length(rating_comment) <= 500"),
)


# SQLite adds a CHECK only by rebuilding the table (batch mode; migrations/run.py turns foreign
# keys off meanwhile). Rebuilding `messages` drops its full-text triggers, which are made again
# (as in 0005), and its partial index is dropped first and made again after, so that it keeps its
# WHERE clause whatever the reflection of partial indexes does.
def upgrade() -> None:
    op.drop_index("ix_messages_in_progress", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("answered", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("rating", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("rating_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("rating_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rated_at", portico.models.base.UTCDateTime(timezone=True), nullable=True))
        for name, condition in CHECKS:
            batch_op.create_check_constraint(op.f(name), condition)
    _in_progress_index()
    # Rated replies are few: the rollup and the "rated down" filter read them through this.
    op.create_index(
        "ix_messages_rated", "messages", ["rated_at"], sqlite_where=sa.text(RATED), postgresql_where=sa.text(RATED)
    )
    _recreate_full_text_triggers()
    op.add_column("usage_hourly", sa.Column("rated_up", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("usage_hourly", sa.Column("rated_down", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("assistant_versions", sa.Column("starters", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain columns are dropped in place on both (SQLite 3.35+).
    op.execute("ALTER TABLE assistant_versions DROP COLUMN starters")
    op.execute("ALTER TABLE usage_hourly DROP COLUMN rated_down")
    op.execute("ALTER TABLE usage_hourly DROP COLUMN rated_up")
    op.drop_index("ix_messages_rated", table_name="messages")
    op.drop_index("ix_messages_in_progress", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        for name, _condition in CHECKS:
            batch_op.drop_constraint(op.f(name), type_="check")
        for column in ("rated_at", "rating_comment", "rating_reason", "rating", "answered", "sources"):
            batch_op.drop_column(column)
    _in_progress_index()
    _recreate_full_text_triggers()


def _in_progress_index() -> None:
    op.create_index(
        "ix_messages_in_progress",
        "messages",
        ["saved_at"],
        sqlite_where=sa.text(IN_PROGRESS),
        postgresql_where=sa.text(IN_PROGRESS),
    )


def _recreate_full_text_triggers() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute(
        "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.content IS NOT NULL BEGIN "
        "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.content IS NOT NULL BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, content) SELECT 'delete', old.id, old.content "
        "WHERE old.content IS NOT NULL; "
        "INSERT INTO messages_fts(rowid, content) SELECT new.id, new.content WHERE new.content IS NOT NULL; END"
    )
