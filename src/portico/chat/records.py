"""What the guest store gives back: plain values, no SQLAlchemy object or driver type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from portico.access.gate import AssistantFacts, LinkFacts


@dataclass(frozen=True)
class SessionRecord:
    id: int
    assistant_id: int
    version_number: int
    link_id: int | None
    channel: str
    token_digest: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class OpenSession:
    """A session with what opening it needs: its assistant now (None when deleted), its link,
    and the settings, greeting, digest and starters of the version it started on."""

    session: SessionRecord
    assistant: AssistantFacts | None
    link: LinkFacts | None
    settings: dict[str, Any]
    greeting: str
    version_digest: str
    starters: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageRecord:
    id: int
    role: str
    content: str | None
    created_at: datetime
    error_code: str | None
    # None while a reply is still being written.
    duration_ms: int | None = None
    sources: list[str] | None = None
    answered: bool | None = None
    rating: str | None = None
    rating_reason: str | None = None
    rating_comment: str | None = None


@dataclass(frozen=True)
class Reply:
    session_id: int
    content: str | None
    first_token_ms: int | None
    duration_ms: int
    tokens_in: int
    tokens_out: int
    error_code: str | None
    # The knowledge sections the engine drew on, and whether it found an answer there.
    sources: tuple[str, ...] = ()
    answered: bool = True


@dataclass(frozen=True)
class DailyCaps:
    """An assistant's daily quotas (0 = unlimited), checked as a session starts."""

    sessions: int = 0
    tokens: int = 0


class DailyLimitReached(Exception):
    """A start refused by the assistant's daily quota: nothing of it was saved."""


class Rated(StrEnum):
    """What became of a guest's rating of a message."""

    RATED = "rated"
    NOT_FOUND = "not_found"  # no such message in this session
    NOT_A_REPLY = "not_a_reply"  # the guest's own message
    IN_PROGRESS = "in_progress"  # a reply still being written


class GuestSave(StrEnum):
    """What became of a guest's message."""

    SAVED = "saved"
    ENDED = "ended"
    MESSAGE_LIMIT = "message_limit"
    DAILY_LIMIT = "daily_limit"
