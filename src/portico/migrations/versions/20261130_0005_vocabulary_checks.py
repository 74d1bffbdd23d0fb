"""vocabulary checks: status, share mode, channel, end reason, role and refusal code hold only the
values of portico.vocabulary

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from portico.vocabulary import Channel, EndReason, Refusal, Role, ShareMode, Status, sql_in

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> (constraint name, condition); the names follow the models' naming convention
# ("ck_%(table_name)s_%(constraint_name)s").
CHECKS = {
    "assistants": [
        ("ck_assistants_status", f"status IN {sql_in(Status)}"),
        ("ck_assistants_share_mode", f"share_mode IN {sql_in(ShareMode)}"),
    ],
    "chat_sessions": [
        ("ck_chat_sessions_channel", f"channel IN {sql_in(Channel)}"),
        ("ck_chat_sessions_end_reason", f"end_reason IS NULL OR end_reason IN {sql_in(EndReason)}"),
    ],
    "messages": [("ck_messages_role", f"role IN {sql_in(Role)}")],
    "refusals_hourly": [("ck_refusals_hourly_code", f"code IN {sql_in(Refusal)}")],
}


# SQLite cannot add or drop a constraint in place: batch mode rebuilds each table (migrations/run.py
# turns foreign keys off meanwhile, so nothing cascades). Rebuilding `messages` drops its full-text
# triggers (migration 0004), which are made again; the FTS table keeps the same rowids.
def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(op.f(name), condition)
    _recreate_full_text_triggers()


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _condition in checks:
                batch_op.drop_constraint(op.f(name), type_="check")
    _recreate_full_text_triggers()


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
