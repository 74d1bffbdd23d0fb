"""retired link keys: a reissued link's old key is known by its digest, and the end reason and refusal
code `link_reissued` (issue 21)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from portico.models.base import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The values as each revision knows them (written out, so this migration means the same later).
END_REASONS = (
    "'guest', 'inactivity', 'max_duration', 'assistant_offline', 'assistant_deleted', 'link_revoked', "
    "'made_private', 'completed', 'interrupted'"
)
REFUSALS = (
    "'not_found', 'not_published', 'assistant_offline', 'link_invalid', 'link_revoked', 'link_paused', "
    "'link_expired', 'link_exhausted', 'key_required', 'access_code_required', 'access_code_invalid', "
    "'origin_not_allowed', 'daily_limit_reached', 'message_limit_reached', 'rate_limited'"
)
NEW = ", 'link_reissued'"


def _replace_checks(end_reasons: str, refusals: str) -> None:
    # SQLite cannot change a constraint in place: batch mode rebuilds the table (migrations/run.py
    # turns foreign keys off meanwhile); PostgreSQL alters it in place.
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_sessions_end_reason"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_sessions_end_reason"), f"end_reason IS NULL OR end_reason IN ({end_reasons})"
        )
    with op.batch_alter_table("refusals_hourly", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_refusals_hourly_code"), type_="check")
        batch_op.create_check_constraint(op.f("ck_refusals_hourly_code"), f"code IN ({refusals})")


def upgrade() -> None:
    op.create_table(
        "retired_link_keys",
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("retired_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["private_links.id"],
            name=op.f("fk_retired_link_keys_link_id_private_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_digest", name=op.f("pk_retired_link_keys")),
    )
    op.create_index(op.f("ix_retired_link_keys_link_id"), "retired_link_keys", ["link_id"], unique=False)
    _replace_checks(END_REASONS + NEW, REFUSALS + NEW)


def downgrade() -> None:
    # The older schema knows neither: a reissued link's sessions read as ended by its deletion, and
    # the refusals of old keys leave Metrics.
    op.execute("UPDATE chat_sessions SET end_reason = 'link_revoked' WHERE end_reason = 'link_reissued'")
    op.execute("DELETE FROM refusals_hourly WHERE code = 'link_reissued'")
    _replace_checks(END_REASONS, REFUSALS)
    op.drop_index(op.f("ix_retired_link_keys_link_id"), table_name="retired_link_keys")
    op.drop_table("retired_link_keys")
