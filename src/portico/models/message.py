from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow
from portico.vocabulary import FeedbackReason, Rating, Role, sql_in

IN_PROGRESS = "role = 'assistant' AND duration_ms IS NULL"
RATED = "rating IS NOT NULL"
# A guest's comment on a reply (issue 14: feedback).
COMMENT_MAX = 500


class Message(Base):
    """One turn of a session: the guest's (`guest`) or the assistant's (`assistant`)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session", "session_id", "id"),
        # The rollup reads the messages of recent hours.
        Index("ix_messages_created", "created_at"),
        CheckConstraint(f"role IN {sql_in(Role)}", name="role"),
        # Replies still being written (no duration yet), for the sweep that marks the orphans.
        Index(
            "ix_messages_in_progress",
            "saved_at",
            sqlite_where=text(IN_PROGRESS),
            postgresql_where=text(IN_PROGRESS),
        ),
        CheckConstraint(f"rating IS NULL OR rating IN {sql_in(Rating)}", name="rating"),
        CheckConstraint(f"rating_reason IS NULL OR rating_reason IN {sql_in(FeedbackReason)}", name="rating_reason"),
        CheckConstraint(f"rating_comment IS NULL OR length(rating_comment) <= {COMMENT_MAX}", name="rating_comment"),
        # Rated replies are few: the rollup and the Logs' rating filter read them through this.
        Index("ix_messages_rated", "rated_at", sqlite_where=text(RATED), postgresql_where=text(RATED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Replies only: milliseconds to the first token and to the last, token counts, and the
    # engine's error code when the reply failed or was cut off.
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(40))
    # A reply being streamed is saved as it grows (chat/messages.py); this is the database's time
    # of its last save. NULL for guests' messages and for replies saved whole.
    saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Replies only: the knowledge sections the engine drew on (titles), and False when the
    # built-in engine found nothing to answer with (the owner's unanswered report). NULL for guests.
    sources: Mapped[list[str] | None] = mapped_column(JSON)
    answered: Mapped[bool | None] = mapped_column(Boolean)
    # The guest's verdict on a reply, changeable: up or down, why, and a comment; when last rated.
    rating: Mapped[str | None] = mapped_column(String(8))
    rating_reason: Mapped[str | None] = mapped_column(String(16))
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Guests' messages only: the length in milliseconds of the audio a spoken message was heard
    # from (the audio itself is never kept); NULL for a typed message and for replies.
    audio_ms: Mapped[int | None] = mapped_column(Integer)
