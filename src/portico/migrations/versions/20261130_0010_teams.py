"""teams own assistants: teams, memberships with a role, invitations, the audit log; tokens and
dashboard sessions work within a team

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import portico.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC = portico.models.base.UTCDateTime(timezone=True)
ACTIONS = (
    "'assistant.created', 'assistant.deleted', 'assistant.published', 'assistant.version_restored', "
    "'assistant.status', 'assistant.share_mode', 'assistant.access_code_set', 'assistant.access_code_removed', "
    "'assistant.public_link_expiry', 'assistant.public_link_rotated', 'assistant.widget_id_rotated', "
    "'assistant.allowed_websites', 'assistant.quotas', 'assistant.retention', 'link.created', 'link.renamed', "
    "'link.cap', 'link.paused', 'link.resumed', 'link.expiry', 'link.reset', 'link.deleted', 'link.reissued', "
    "'member.invited', 'member.invitation_revoked', 'member.joined', 'member.role_changed', 'member.removed', "
    "'member.left', 'team.ownership_transferred', 'team.renamed'"
)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 200", name=op.f("ck_teams_name_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("role IN ('owner', 'admin', 'editor')", name=op.f("ck_memberships_role")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name=op.f("fk_memberships_owner_id_owners"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_memberships_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("team_id", "owner_id", name="uq_memberships_team_account"),
    )
    op.create_index("ix_memberships_owner_id", "memberships", ["owner_id"])
    op.create_index(
        "uq_memberships_one_owner",
        "memberships",
        ["team_id"],
        unique=True,
        sqlite_where=sa.text("role = 'owner'"),
        postgresql_where=sa.text("role = 'owner'"),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.Column("used_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.CheckConstraint("role IN ('admin', 'editor')", name=op.f("ck_invitations_role")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["owners.id"], name=op.f("fk_invitations_created_by_owners"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_invitations_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["owners.id"], name=op.f("fk_invitations_used_by_owners"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("digest", name=op.f("uq_invitations_digest")),
    )
    op.create_index("ix_invitations_team_id", "invitations", ["team_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sa.String(length=320), nullable=True),
        sa.Column("assistant_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name=op.f("ck_audit_events_action")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["owners.id"], name=op.f("fk_audit_events_actor_id_owners"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.id"],
            name=op.f("fk_audit_events_assistant_id_assistants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_audit_events_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_team", "audit_events", ["team_id", "id"])

    # Each existing owner gets a team of their own, with the same id, holding their assistants and
    # tokens: nothing changes for them. (The same id keeps this one statement per table.)
    op.execute("INSERT INTO teams (id, name, created_at) SELECT id, substr(email, 1, 200), created_at FROM owners")
    op.execute(
        "INSERT INTO memberships (team_id, owner_id, role, created_at) SELECT id, id, 'owner', created_at FROM owners"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('teams', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM teams), false)"
        )

    op.add_column("assistants", sa.Column("team_id", sa.Integer(), nullable=True))
    op.execute("UPDATE assistants SET team_id = owner_id")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.alter_column("team_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_assistants_team_id_teams"), "teams", ["team_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_assistants_team_id"), ["team_id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_assistants_owner_id"))
        batch_op.drop_constraint(batch_op.f("fk_assistants_owner_id_owners"), type_="foreignkey")
        batch_op.drop_column("owner_id")

    op.add_column("api_tokens", sa.Column("team_id", sa.Integer(), nullable=True))
    op.execute("UPDATE api_tokens SET team_id = owner_id")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("team_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_team_id_teams"), "teams", ["team_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_api_tokens_team_id"), ["team_id"], unique=False)

    with op.batch_alter_table("owner_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_owner_sessions_team_id_teams"), "teams", ["team_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("owner_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_owner_sessions_team_id_teams"), type_="foreignkey")
        batch_op.drop_column("team_id")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_team_id"))
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_team_id_teams"), type_="foreignkey")
        batch_op.drop_column("team_id")
    # A team's assistants go back to its Owner.
    op.add_column("assistants", sa.Column("owner_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE assistants SET owner_id = (SELECT m.owner_id FROM memberships m "
        "WHERE m.team_id = assistants.team_id AND m.role = 'owner')"
    )
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.alter_column("owner_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_assistants_owner_id_owners"), "owners", ["owner_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_assistants_owner_id"), ["owner_id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_assistants_team_id"))
        batch_op.drop_constraint(batch_op.f("fk_assistants_team_id_teams"), type_="foreignkey")
        batch_op.drop_column("team_id")
    op.drop_index("ix_audit_events_team", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_invitations_team_id", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("uq_memberships_one_owner", table_name="memberships")
    op.drop_index("ix_memberships_owner_id", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("teams")
