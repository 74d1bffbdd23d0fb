from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow
from portico.vocabulary import Channel, EndReason, sql_in


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_assistant_started", "assistant_id", "started_at", "id"),
        Index("ix_chat_sessions_link", "link_id"),
        # Logs filtered by user, newest first; and the rollup of sessions that ended lately.
        Index("ix_chat_sessions_assistant_link_started", "assistant_id", "link_id", "started_at", "id"),
        Index("ix_chat_sessions_ended", "ended_at"),
        # Sessions still open, for ending them all at once (offline, revoke) and the sweep.
        Index(
            "ix_chat_sessions_open",
            "assistant_id",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        CheckConstraint(f"channel IN {sql_in(Channel)}", name="channel"),
        CheckConstraint(f"end_reason IS NULL OR end_reason IN {sql_in(EndReason)}", name="end_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    version_number: Mapped[int] = mapped_column(Integer)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("private_links.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # Running totals, kept with each message so Logs need not count messages.
    message_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The guest's own messages, for the assistant's messages_per_session quota.
    guest_messages: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    tokens_out: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
