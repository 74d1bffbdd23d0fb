from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, deferred, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow
from portico.vocabulary import ShareMode, Status, sql_in

# The owner's caps on use (0 = unlimited). Not versioned: they apply at once (docs/design.md, "Quotas").
QUOTAS = ("messages_per_session", "sessions_per_day", "tokens_per_day")


class Assistant(Base):
    __tablename__ = "assistants"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(Status)}", name="status"),
        CheckConstraint(f"share_mode IN {sql_in(ShareMode)}", name="share_mode"),
        *(CheckConstraint(f"{quota} >= 0", name=quota) for quota in QUOTAS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A team owns an assistant, not a person (issue 15).
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    # What the embed code carries (`data-assistant`): rotated on its own, so rotating the public
    # link never breaks a website's widget.
    widget_id: Mapped[str] = mapped_column(String(32), unique=True)
    # An optional password on the public link and the key-less widget, as an argon2 hash.
    access_code_hash: Mapped[str | None] = mapped_column(String(200))
    public_link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="offline")
    share_mode: Mapped[str] = mapped_column(String(16), default="public")
    # The draft is everything a Publish snapshots; see assistants/schemas.py `Draft`.
    draft: Mapped[dict[str, Any]] = deferred(mapped_column(JSON, nullable=False), raiseload=True)
    draft_digest: Mapped[str] = mapped_column(String(64))
    published_version: Mapped[int | None] = mapped_column(Integer)
    # Origins allowed to frame the widget; empty means any (see the widget's docs).
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Logs: days to keep sessions (0 = forever), and whether message text is stored at all.
    retention_days: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    store_transcripts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    messages_per_session: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    sessions_per_day: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    tokens_per_day: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AssistantVersion(Base):
    """An immutable snapshot of a draft. Rows are only ever inserted."""

    __tablename__ = "assistant_versions"
    __table_args__ = (UniqueConstraint("assistant_id", "number", name="uq_assistant_versions_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = deferred(mapped_column(JSON, nullable=False), raiseload=True)
    # Kept beside the config so that per-message checks need not load the knowledge text.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    greeting: Mapped[str] = mapped_column(Text, default="")
    # The starter questions guests may click before their first message (NULL before 0009: none).
    starters: Mapped[list[str] | None] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
