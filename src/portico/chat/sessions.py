"""Guest sessions: start through the gate, resume with the token, end.

A session is also ended lazily when it is next touched after its assistant went offline or
was deleted, its link was revoked, or its inactivity timeout or maximum duration passed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.access import gate
from portico.errors import InvalidToken
from portico.kit.crypto import digest, new_token
from portico.models import Assistant, AssistantVersion, ChatSession, utcnow
from portico.widget.domains import allows

TOKEN_PREFIX = "pts_"


class InvalidSessionToken(InvalidToken):
    code = "invalid_session_token"
    message = "This session token does not belong to this session."


@dataclass
class OpenedSession:
    session: ChatSession
    assistant: gate.AssistantFacts | None
    link: gate.LinkFacts | None
    settings: dict[str, Any]
    greeting: str
    # Set by start_session: an unlimited link whose use is counted once the session is committed.
    uncounted_link_id: int | None = None


async def count_unlimited_use(sessionmaker: async_sessionmaker[AsyncSession], opened: OpenedSession) -> None:
    """Call after the session's commit (see gate.count_use)."""
    if opened.uncounted_link_id is not None:
        async with sessionmaker() as db, db.begin():
            await gate.count_use(db, link_id=opened.uncounted_link_id)


async def _version(db: AsyncSession, *, assistant_id: int, number: int) -> AssistantVersion:
    query = select(AssistantVersion).where(
        AssistantVersion.assistant_id == assistant_id, AssistantVersion.number == number
    )
    return (await db.scalars(query)).one()


_INSERT_SESSION = insert(ChatSession).returning(ChatSession.id)
_ALLOWED_DOMAINS = select(Assistant.allowed_domains).where(Assistant.id == bindparam("p_assistant_id"))


async def start_session(
    db: AsyncSession, *, public_id: str | None, key: str | None, channel: str, origin: str | None = None
) -> tuple[OpenedSession, str]:
    try:
        admission = await gate.check(db, public_id=public_id, key=key)
        assistant = admission.assistant
        if channel == "widget":
            allowed = (await (await db.connection()).execute(_ALLOWED_DOMAINS, {"p_assistant_id": assistant.id})).scalar()
            if not allows(allowed or [], origin):
                refusal = gate.OriginNotAllowed()
                refusal.assistant_id = assistant.id
                raise refusal
    except gate.GateRefusal as refusal:
        refusal.at_session_start = True
        raise
    assert assistant.published_version is not None and assistant.settings is not None
    token = new_token(TOKEN_PREFIX)
    values = {
        "assistant_id": assistant.id,
        "version_number": assistant.published_version,
        "link_id": admission.link.id if admission.link else None,
        "channel": channel,
        "token_digest": digest(token),
        "started_at": utcnow(),
    }
    values["last_activity_at"] = values["started_at"]
    session_id = (await (await db.connection()).execute(_INSERT_SESSION, values)).scalar_one()
    # The link's use is taken last, just before the commit: its row is locked until then.
    admission = await gate.take_use(db, admission)
    session = ChatSession(id=session_id, ended_at=None, end_reason=None, **values)
    link = admission.link
    uncounted = link.id if link is not None and link.max_sessions == 0 else None
    return OpenedSession(session, assistant, link, assistant.settings, assistant.greeting, uncounted), token


async def published_greeting(db: AsyncSession, *, assistant: gate.AssistantFacts) -> str:
    query = select(AssistantVersion.greeting).where(
        AssistantVersion.assistant_id == assistant.id, AssistantVersion.number == assistant.published_version
    )
    return await db.scalar(query) or ""


def expiry(session: ChatSession, settings: dict[str, Any], now: datetime) -> tuple[str, datetime] | None:
    idle_end = session.last_activity_at + timedelta(seconds=settings["inactivity_timeout"])
    max_end = session.started_at + timedelta(seconds=settings["max_duration"])
    if now >= min(idle_end, max_end):
        # Record the moment it really ended, not the moment we noticed.
        return ("max_duration", max_end) if max_end <= idle_end else ("inactivity", idle_end)
    return None


def _live_refusal(opened: OpenedSession) -> gate.GateRefusal | None:
    if opened.assistant is None:
        return gate.NoSuchAssistant()
    if opened.assistant.status != "live":
        return gate.AssistantOffline()
    if opened.link is not None and opened.link.revoked:
        return gate.LinkRevoked()
    if opened.link is None and opened.assistant.share_mode != "public" and opened.session.channel != "preview":
        return gate.KeyRequired()
    return None


async def open_session(db: AsyncSession, *, session_id: int, token: str) -> OpenedSession:
    """Find a session by id and token, and end it now if its time or its access has run out.

    Raises the gate's refusal when the assistant is offline or gone or the link revoked, as a
    new start would be refused.
    """
    session = await db.get(ChatSession, session_id)
    if session is None or not hmac.compare_digest(session.token_digest, digest(token)):
        raise InvalidSessionToken()
    assistant = await gate.load_assistant(db, assistant_id=session.assistant_id)
    link = await gate.load_link(db, link_id=session.link_id) if session.link_id is not None else None
    version = await _version(db, assistant_id=session.assistant_id, number=session.version_number)
    opened = OpenedSession(session, assistant, link, version.settings, version.greeting)
    # Going offline, deleting the assistant and revoking the link end its open sessions in
    # the same transaction (assistants.service.end_open_sessions), so a refusal here has
    # nothing left to end.
    refusal = _live_refusal(opened)
    if refusal is not None:
        raise refusal
    if session.ended_at is None and (expired := expiry(session, opened.settings, utcnow())) is not None:
        await end_session(db, session=session, reason=expired[0], at=expired[1])
    return opened


async def end_session(db: AsyncSession, *, session: ChatSession, reason: str, at: datetime | None = None) -> None:
    if session.ended_at is not None:
        return
    at = at or utcnow()
    await db.execute(
        update(ChatSession)
        .where(ChatSession.id == session.id, ChatSession.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.ended_at = at
    session.end_reason = reason
