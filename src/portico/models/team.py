"""Teams (issue 15): who owns assistants, who belongs with which role, invitations, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow
from portico.vocabulary import AuditAction, TeamRole, sql_in


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (CheckConstraint("length(name) BETWEEN 1 AND 200", name="name_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the Owner deletes the team: it has no members from then on, and the purge erases it.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(f"role IN {sql_in(TeamRole)}", name="role"),
        UniqueConstraint("team_id", "owner_id", name="uq_memberships_team_account"),
        # Exactly one Owner per team: at most one here, and the services never remove the last.
        Index(
            "uq_memberships_one_owner",
            "team_id",
            unique=True,
            sqlite_where=text("role = 'owner'"),
            postgresql_where=text("role = 'owner'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # The account (table `owners`, named before teams existed: every account may own assistants).
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invitation(Base):
    """A single-use invitation; its secret travels in a URL fragment and is stored as a digest."""

    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(f"role IN {sql_in((TeamRole.ADMIN, TeamRole.EDITOR))}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who changed what guests get, or who may reach it. Rows are only inserted, and kept as long as the team."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(f"action IN {sql_in(AuditAction)}", name="action"),
        Index("ix_audit_events_team", "team_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # Null for the operator (the CLI); the email is kept too, so a removed member's entries still say who.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="SET NULL"))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    assistant_id: Mapped[int | None] = mapped_column(ForeignKey("assistants.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    # Plain facts (a version number, a status, a link's name, a role); never a key or a code.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
