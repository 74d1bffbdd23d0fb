"""draft edits are audited: the audit log's actions include `assistant.draft_edited` (who changed
which fields of a draft, and when)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The actions as each revision knows them (written out, so this migration means the same later).
BEFORE = (
    "'assistant.created', 'assistant.deleted', 'assistant.published', 'assistant.version_restored', "
    "'assistant.status', 'assistant.share_mode', 'assistant.access_code_set', 'assistant.access_code_removed', "
    "'assistant.public_link_expiry', 'assistant.public_link_rotated', 'assistant.widget_id_rotated', "
    "'assistant.allowed_websites', 'assistant.quotas', 'assistant.retention', 'link.created', 'link.renamed', "
    "'link.cap', 'link.paused', 'link.resumed', 'link.expiry', 'link.reset', 'link.deleted', 'link.reissued', "
    "'member.invited', 'member.invitation_revoked', 'member.joined', 'member.role_changed', 'member.removed', "
    "'member.left', 'team.ownership_transferred', 'team.renamed'"
)
AFTER = BEFORE + ", 'assistant.draft_edited'"
NAME = "ck_audit_events_action"


def _replace_check(actions: str) -> None:
    # SQLite cannot change a constraint in place: batch mode rebuilds the table (migrations/run.py
    # turns foreign keys off meanwhile); PostgreSQL alters it in place.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_="check")
        batch_op.create_check_constraint(op.f(NAME), f"action IN ({actions})")


def upgrade() -> None:
    _replace_check(AFTER)


def downgrade() -> None:
    # The entries the older schema cannot hold go: they say only which fields an edit changed.
    op.execute("DELETE FROM audit_events WHERE action = 'assistant.draft_edited'")
    _replace_check(BEFORE)
