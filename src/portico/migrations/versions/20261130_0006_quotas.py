"""quotas: an assistant's caps on messages per session, sessions and tokens per day, the counts
they are checked against, and the refusal code message_limit_reached

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op

import portico.models.base
from portico.vocabulary import Refusal, Role, sql_in

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

QUOTAS = ("messages_per_session", "sessions_per_day", "tokens_per_day")
REFUSAL_CHECK = "ck_refusals_hourly_code"
# The codes as 0005 knew them, for the way down.
BEFORE = tuple(code for code in Refusal if code != Refusal.MESSAGE_LIMIT_REACHED)


# SQLite adds a plain column in place, but a CHECK constraint only by rebuilding the table (batch
# mode; migrations/run.py turns foreign keys off meanwhile). No table rebuilt here has triggers:
# `messages`, which carries the full-text triggers, is left alone.
def upgrade() -> None:
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        for quota in QUOTAS:
            batch_op.add_column(sa.Column(quota, sa.Integer(), server_default=sa.text("0"), nullable=False))
            batch_op.create_check_constraint(op.f(f"ck_assistants_{quota}"), f"{quota} >= 0")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guest_messages", sa.Integer(), server_default=sa.text("0"), nullable=False))
    # Open sessions carry on with their true count, so a cap set later counts what they already said.
    op.execute(
        "UPDATE chat_sessions SET guest_messages = (SELECT count(*) FROM messages "
        f"WHERE messages.session_id = chat_sessions.id AND messages.role = '{Role.GUEST.value}') "
        "WHERE ended_at IS NULL"
    )
    op.create_table(
        "daily_usage",
        sa.Column("assistant_id", sa.Integer(), nullable=False),
        sa.Column("day", portico.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sessions", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_daily_usage_assistant_id_assistants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assistant_id", "day", name=op.f("pk_daily_usage")),
    )
    _refusal_codes(Refusal)


def downgrade() -> None:
    op.execute(f"DELETE FROM refusals_hourly WHERE code = '{Refusal.MESSAGE_LIMIT_REACHED.value}'")
    _refusal_codes(BEFORE)
    op.drop_table("daily_usage")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_column("guest_messages")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        for quota in QUOTAS:
            batch_op.drop_constraint(op.f(f"ck_assistants_{quota}"), type_="check")
            batch_op.drop_column(quota)


def _refusal_codes(codes: Iterable[Refusal]) -> None:
    with op.batch_alter_table("refusals_hourly", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(REFUSAL_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(REFUSAL_CHECK), f"code IN {sql_in(codes)}")
