"""Logs search in a side table on PostgreSQL: one search vector per session (`session_search`),
kept by triggers on messages as they are saved, with a GIN index; the per-message GIN index goes.

SQLite keeps its FTS5 table of messages (migration 0004), read newest first in batches.

The vectors of sessions saved before this migration are filled by `portico.metrics.search.backfill`
in batches of sessions, newest first, each batch its own transaction, resumable: the row of
`session_search_backfill` says which sessions are left (`below`: ids under it); no row, nothing left.
A database with few sessions is filled here at once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Sessions the migration fills itself; more are left to the batched backfill.
INLINE = 5_000

# What a message adds to its session's vector: the words of a guest message, or of a finished reply
# (a reply still streaming has no duration; it is added once, when it is finished, not per tick).
ADD = """
CREATE OR REPLACE FUNCTION session_search_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_search AS s (session_id, assistant_id, started_at, search)
    SELECT c.id, c.assistant_id, c.started_at, strip(to_tsvector('simple', NEW.content))
    FROM chat_sessions c WHERE c.id = NEW.session_id
    ON CONFLICT (session_id) DO UPDATE SET search = s.search || excluded.search;
    RETURN NULL;
END $$
"""
SEARCHABLE = "NEW.content IS NOT NULL AND (NEW.role <> 'assistant' OR NEW.duration_ms IS NOT NULL)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE session_search ("
        "session_id integer PRIMARY KEY REFERENCES chat_sessions (id) ON DELETE CASCADE, "
        "assistant_id integer NOT NULL, "
        "started_at timestamp with time zone NOT NULL, "
        "search tsvector NOT NULL)"
    )
    op.execute(
        "CREATE INDEX ix_session_search_assistant_started ON session_search (assistant_id, started_at, session_id)"
    )
    op.execute("CREATE INDEX ix_session_search_search ON session_search USING gin (search)")
    # A rare word must be estimated as rare, or the planner walks every session looking for it.
    op.execute("ALTER TABLE session_search ALTER COLUMN search SET STATISTICS 1000")
    op.execute(ADD)
    op.execute(
        "CREATE TRIGGER session_search_saved AFTER INSERT ON messages FOR EACH ROW "
        f"WHEN ({SEARCHABLE}) EXECUTE FUNCTION session_search_add()"
    )
    op.execute(
        "CREATE TRIGGER session_search_finished AFTER UPDATE ON messages FOR EACH ROW "
        f"WHEN ({SEARCHABLE} AND OLD.duration_ms IS NULL) EXECUTE FUNCTION session_search_add()"
    )
    op.execute("CREATE TABLE session_search_backfill (below integer NOT NULL)")
    op.execute("INSERT INTO session_search_backfill SELECT coalesce(max(id), 0) + 1 FROM chat_sessions")
    if op.get_bind().exec_driver_sql("SELECT count(*) FROM chat_sessions").scalar_one() <= INLINE:
        op.execute(BACKFILL.replace(":batch", str(INLINE + 1)))
        op.execute("DELETE FROM session_search_backfill")
    op.execute("DROP INDEX IF EXISTS ix_messages_content_fts")


# One batch of the backfill (also run by portico.metrics.search.backfill, which keeps its own copy):
# the next sessions below the mark, newest first, their stored words added, the mark moved down.
BACKFILL = """
WITH batch AS (
    SELECT id, assistant_id, started_at FROM chat_sessions
    WHERE id < (SELECT below FROM session_search_backfill)
    ORDER BY id DESC LIMIT :batch
), vectors AS (
    SELECT b.id, b.assistant_id, b.started_at, strip(to_tsvector('simple', string_agg(m.content, ' '))) AS search
    FROM batch b JOIN messages m ON m.session_id = b.id
    WHERE m.content IS NOT NULL AND (m.role <> 'assistant' OR m.duration_ms IS NOT NULL)
    GROUP BY b.id, b.assistant_id, b.started_at
), saved AS (
    INSERT INTO session_search AS s (session_id, assistant_id, started_at, search)
    SELECT id, assistant_id, started_at, search FROM vectors
    ON CONFLICT (session_id) DO UPDATE SET search = s.search || excluded.search
)
UPDATE session_search_backfill SET below = coalesce((SELECT min(id) FROM batch), 0)
"""


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_messages_content_fts ON messages "
        "USING gin (to_tsvector('simple', coalesce(content, '')))"
    )
    op.execute("DROP TRIGGER IF EXISTS session_search_finished ON messages")
    op.execute("DROP TRIGGER IF EXISTS session_search_saved ON messages")
    op.execute("DROP FUNCTION IF EXISTS session_search_add()")
    op.execute("DROP TABLE IF EXISTS session_search_backfill")
    op.execute("DROP TABLE IF EXISTS session_search")
