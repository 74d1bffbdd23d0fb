"""Documents an assistant's draft answers from (issue 24): each file's extracted Markdown, with page
markers, and what the dashboard lists of it. A Publish copies the ready documents' text into the
version (assistants/service.py), so a change here reaches guests only with the next Publish."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from portico.models.base import Base, UTCDateTime, utcnow
from portico.vocabulary import DocumentStatus, sql_in


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(DocumentStatus)}", name="status"),
        Index("ix_documents_assistant", "assistant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assistant_id: Mapped[int] = mapped_column(ForeignKey("assistants.id", ondelete="CASCADE"))
    # The name sources cite ("Price list 2027, page 2"): the file's name without its extension.
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    passages: Mapped[int] = mapped_column(Integer, default=0)
    chars: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.PROCESSING)
    # Why a failed document failed: a code for programs and a sentence for people.
    error_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = deferred(mapped_column(Text, default="", nullable=False), raiseload=True)
    digest: Mapped[str] = mapped_column(String(64), default="")
    # The uploaded file itself, only when PORTICO_DOCUMENT_KEEP_ORIGINALS is on (`has_original` says
    # so without loading it).
    original: Mapped[bytes | None] = deferred(mapped_column(LargeBinary), raiseload=True)
    has_original: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
