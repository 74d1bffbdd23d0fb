"""What the guest store gives back: plain values, no SQLAlchemy object or driver type, and the
refusals it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portico.errors import Conflict, InvalidRequest, NotFound
from portico.kit.i18n import N_


# What the gate decides on (access/gate.py), as the store reads it.
@dataclass(frozen=True)
class AssistantFacts:
    id: int
    public_id: str
    name: str
    description: str
    published_version: int | None
    status: str
    share_mode: str
    store_transcripts: bool = True
    # The published version's greeting and session settings, loaded in the same query.
    greeting: str = ""
    starters: tuple[str, ...] = ()
    settings: dict[str, Any] | None = None
    allowed_domains: tuple[str, ...] = ()
    published_digest: str = ""
    # The owner's quotas, applied at once (0 = unlimited): checked by the store as it writes.
    messages_per_session: int = 0
    sessions_per_day: int = 0
    tokens_per_day: int = 0
    widget_id: str = ""
    # The public link's access code (an argon2 hash; None = no code) and end (None = never).
    access_code_hash: str | None = field(default=None, repr=False)
    public_link_expires_at: datetime | None = None


@dataclass(frozen=True)
class LinkFacts:
    id: int
    assistant_id: int
    name: str
    revoked: bool
    max_sessions: int
    sessions_used: int
    paused: bool = False
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def exhausted(self) -> bool:
        return self.max_sessions > 0 and self.sessions_used >= self.max_sessions

    @property
    def sessions_left(self) -> int | None:
        return None if self.max_sessions == 0 else max(self.max_sessions - self.sessions_used, 0)


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

    @property
    def store_text(self) -> bool:
        """The owner's "don't store transcripts" switch: messages are counted, their text is not kept."""
        return self.assistant is None or self.assistant.store_transcripts


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
    # A spoken guest message: its audio's length (chat/voice.py).
    audio_ms: int | None = None


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


# What the store refuses, raised as the domain errors the guest is answered with (errors.py): a
# write it would not make saved nothing. The gate's refusals (a link with no use left, a daily or
# message quota) are `access.gate.Refused`, which the services count in Metrics before passing on.


class SessionEnded(Conflict):
    code = "session_ended"
    message = N_("This conversation has ended. Start a new one to keep talking.")


class ReplyNotFound(NotFound):
    message = "This conversation has no message with this id."


class NotAReply(InvalidRequest):
    code = "not_a_reply"
    message = "Only the assistant's replies can be rated, not your own messages."


class ReplyInProgress(Conflict):
    code = "reply_in_progress"
    message = "This reply is still being written. Rate it when it has finished."
