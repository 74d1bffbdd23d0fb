"""Guest sessions: start through the gate, resume with the token, end.

A session is also ended lazily when it is next touched after its assistant went offline or
was deleted, its link was revoked, or its inactivity timeout or maximum duration passed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, bindparam, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from portico.access import gate
from portico.db import Db, HotStatement, connection_of, hot_connection
from portico.errors import InvalidToken
from portico.kit.crypto import digest, new_token
from portico.models import Assistant, AssistantVersion, ChatSession, PrivateLink, utcnow
from portico.models.base import UTCDateTime
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
    # The session's version's digest, when it was loaded with the session (open_session).
    version_digest: str | None = None


# The admission's statements are built once (db.HotStatement). A session with a private link is
# inserted together with the use it takes: on PostgreSQL in one statement, which commits on its
# own, so the link's row is locked only while that statement runs, however many guests start
# sessions on the same link at once (bench/session_start.py); SQLite has no UPDATE in a WITH
# clause, and runs the two statements in one transaction, which holds its one write lock anyway.
_SESSION_VALUES = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "version_number": bindparam("p_version_number", type_=Integer),
    "link_id": bindparam("p_link_id", type_=Integer),
    "channel": bindparam("p_channel", type_=String),
    "token_digest": bindparam("p_token_digest", type_=String),
    "started_at": bindparam("p_now", type_=UTCDateTime),
    "last_activity_at": bindparam("p_now", type_=UTCDateTime),
}
# The running totals take their server defaults (include_defaults=False).
_INSERT_SESSION = HotStatement(
    insert(ChatSession)
    .from_select(list(_SESSION_VALUES), select(*_SESSION_VALUES.values()), include_defaults=False)
    .returning(ChatSession.id)
)
_TAKE_USE = HotStatement(gate.TAKE_USE)  # SQLite: before the INSERT, in its transaction
_USED = gate.TAKE_USE.cte("used")
_INSERTED = (
    insert(ChatSession)
    .from_select(
        list(_SESSION_VALUES),
        select(*[_USED.c.id if column == "link_id" else value for column, value in _SESSION_VALUES.items()]),
        include_defaults=False,
    )
    .returning(ChatSession.id)
    .cte("inserted")
)
_INSERT_SESSION_TAKING_USE = HotStatement(
    select(_INSERTED.c.id, _USED.c.sessions_used).select_from(_INSERTED).join(_USED, true())
)


async def start_session(
    engine: AsyncEngine, *, public_id: str | None, key: str | None, channel: str, origin: str | None = None
) -> tuple[OpenedSession, str]:
    """Start a session through the gate, committed when this returns."""
    async with hot_connection(engine) as conn:
        try:
            admission = await gate.check(conn, public_id=public_id, key=key)
            if channel == "widget" and not allows(admission.assistant.allowed_domains, origin):
                refusal = gate.OriginNotAllowed()
                refusal.assistant_id = admission.assistant.id
                raise refusal
        except gate.GateRefusal as refusal:
            refusal.at_session_start = True
            raise
        assistant = admission.assistant
        assert assistant.published_version is not None and assistant.settings is not None
        token = new_token(TOKEN_PREFIX)
        now = utcnow()
        params = {
            "p_assistant_id": assistant.id,
            "p_version_number": assistant.published_version,
            "p_link_id": admission.link.id if admission.link else None,
            "p_channel": channel,
            "p_token_digest": digest(token),
            "p_now": now,
        }
        if admission.link is None:
            inserted = await _INSERT_SESSION.one_or_none(conn, params)
        elif engine.dialect.name == "postgresql":
            inserted = await _INSERT_SESSION_TAKING_USE.one_or_none(conn, params)
            if inserted is None:
                raise await gate.use_not_taken(conn, admission)
            admission = gate.with_use_taken(admission, inserted["sessions_used"])
        else:
            taken = await _TAKE_USE.one_or_none(conn, params)
            if taken is None:
                raise await gate.use_not_taken(conn, admission)
            admission = gate.with_use_taken(admission, taken["sessions_used"])
            inserted = await _INSERT_SESSION.one_or_none(conn, params)
        assert inserted is not None
    session = ChatSession(
        id=inserted["id"],
        assistant_id=assistant.id,
        version_number=assistant.published_version,
        link_id=params["p_link_id"],
        channel=channel,
        token_digest=params["p_token_digest"],
        started_at=now,
        last_activity_at=now,
        ended_at=None,
        end_reason=None,
    )
    return OpenedSession(session, assistant, admission.link, assistant.settings, assistant.greeting), token


def expiry(
    *, started_at: datetime, last_activity_at: datetime, settings: dict[str, Any], now: datetime
) -> tuple[str, datetime] | None:
    """Why and when a session ended by time, or None while it has time left."""
    idle_end = last_activity_at + timedelta(seconds=settings["inactivity_timeout"])
    max_end = started_at + timedelta(seconds=settings["max_duration"])
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


# A session with all that opening it needs, in one query: the gate's facts about its assistant
# (none when deleted) and its link, and the settings and digest of the version it started on.
_SessionVersion = aliased(AssistantVersion, name="session_version")
_SESSION_FIELDS = tuple(column.key for column in ChatSession.__table__.columns)
_OPEN = HotStatement(
    select(
        *(getattr(ChatSession, name).label(f"session_{name}") for name in _SESSION_FIELDS),
        _SessionVersion.settings.label("version_settings"),
        _SessionVersion.greeting.label("version_greeting"),
        _SessionVersion.digest.label("version_digest"),
        *gate.ASSISTANT_COLUMNS,
        *gate.LINK_COLUMNS,
    )
    .select_from(ChatSession)
    .join(
        _SessionVersion,
        and_(
            _SessionVersion.assistant_id == ChatSession.assistant_id,
            _SessionVersion.number == ChatSession.version_number,
        ),
    )
    .outerjoin(Assistant, and_(Assistant.id == ChatSession.assistant_id, Assistant.deleted_at.is_(None)))
    .outerjoin(AssistantVersion, gate.PUBLISHED)
    .outerjoin(PrivateLink, PrivateLink.id == ChatSession.link_id)
    .where(ChatSession.id == bindparam("p_session_id"))
)
_END = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"), ChatSession.ended_at.is_(None))
    .values(ended_at=bindparam("p_at"), end_reason=bindparam("p_reason"))
)


async def open_session(db: Db, *, session_id: int, token: str) -> OpenedSession:
    """Find a session by id and token, and end it now if its time or its access has run out.

    Raises the gate's refusal when the assistant is offline or gone or the link revoked, as a
    new start would be refused.
    """
    row = await _OPEN.one_or_none(await connection_of(db), {"p_session_id": session_id})
    if row is None or not hmac.compare_digest(row["session_token_digest"], digest(token)):
        raise InvalidSessionToken()
    session = ChatSession(**{name: row[f"session_{name}"] for name in _SESSION_FIELDS})
    assistant = gate.assistant_facts(row)
    link = gate.link_facts(row) if row["link_id"] is not None else None
    opened = OpenedSession(
        session, assistant, link, row["version_settings"], row["version_greeting"], row["version_digest"]
    )
    # Going offline, deleting the assistant and revoking the link end its open sessions in
    # the same transaction (assistants.service.end_open_sessions), so a refusal here has
    # nothing left to end.
    refusal = _live_refusal(opened)
    if refusal is not None:
        raise refusal
    if session.ended_at is None:
        times = {"started_at": session.started_at, "last_activity_at": session.last_activity_at}
        if (expired := expiry(**times, settings=opened.settings, now=utcnow())) is not None:
            await end_session(db, session=session, reason=expired[0], at=expired[1])
    return opened


async def end_session(db: Db, *, session: ChatSession, reason: str, at: datetime | None = None) -> None:
    if session.ended_at is not None:
        return
    at = at or utcnow()
    # Through SQLAlchemy, in the caller's transaction (a hot statement would commit by itself).
    await (await connection_of(db)).execute(_END, {"p_session_id": session.id, "p_at": at, "p_reason": reason})
    session.ended_at = at
    session.end_reason = reason
