from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow


class RetiredLinkKey(Base):
    """The digest of a key its link no longer has (reissued): a guest who opens the old link is told
    that the owner replaced it, not that it was copied wrong. Only the digest, as for live keys."""

    __tablename__ = "retired_link_keys"

    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("private_links.id", ondelete="CASCADE"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivateLink(Base):
    __tablename__ = "private_links"
    __table_args__ = (Index("ix_private_links_assistant_active", "assistant_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # Encrypted with the server's secret so an owner can copy the link again later.
    key_encrypted: Mapped[str] = mapped_column(Text)
    max_sessions: Mapped[int] = mapped_column(Integer, default=0)
    sessions_used: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Paused and expired links refuse new sessions; sessions already running go on to their end.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
