"""The gate: who may start a session. See docs/design.md, "The gate".

`decide` is a pure function over what the database says; `check` loads those facts in one query
and asks `decide`. A private link's use is taken with one conditional UPDATE (`TAKE_USE`) in the
same statement or transaction that inserts the session (chat.sessions.start_session), so a link
with N uses admits exactly N sessions under any concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update

from portico.db import Db, HotStatement, connection_of
from portico.errors import NotFound, PorticoError
from portico.kit.crypto import digest, is_well_formed
from portico.models import Assistant, AssistantVersion, PrivateLink

KEY_PREFIX = "ptk_"


class GateRefusal(PorticoError):
    status = 403
    # Set when the refused request named a known assistant; Metrics count the refusals of
    # session starts (not of page views or lookups) by code.
    assistant_id: int | None = None
    at_session_start = False


class NoSuchAssistant(GateRefusal, NotFound):
    status = 404
    code = "not_found"
    message = "This assistant does not exist. The link may have been changed or removed."


class NotPublished(GateRefusal):
    code = "not_published"
    message = "This assistant is not ready yet. Please try again later."


class AssistantOffline(GateRefusal):
    code = "assistant_offline"
    message = "This assistant is offline right now."


class LinkInvalid(GateRefusal):
    code = "link_invalid"
    message = "This link is not valid. Check that you copied all of it."


class LinkRevoked(GateRefusal):
    code = "link_revoked"
    message = "This link has been turned off by the assistant's owner."


class LinkExhausted(GateRefusal):
    code = "link_exhausted"
    message = "This link has no sessions left. Ask the person who shared it for more."


class OriginNotAllowed(GateRefusal):
    code = "origin_not_allowed"
    message = "This assistant cannot be used on this website."


class KeyRequired(GateRefusal):
    code = "key_required"
    message = "This assistant is private. Open it with the personal link you were given."


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
    settings: dict[str, Any] | None = None
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkFacts:
    id: int
    assistant_id: int
    name: str
    revoked: bool
    max_sessions: int
    sessions_used: int

    @property
    def exhausted(self) -> bool:
        return self.max_sessions > 0 and self.sessions_used >= self.max_sessions

    @property
    def sessions_left(self) -> int | None:
        return None if self.max_sessions == 0 else max(self.max_sessions - self.sessions_used, 0)


@dataclass(frozen=True)
class Admission:
    assistant: AssistantFacts
    link: LinkFacts | None


def decide(
    *, public_id_given: bool, key_given: bool, assistant: AssistantFacts | None, link: LinkFacts | None
) -> Admission | GateRefusal:
    """Admit, or say why not, in the order of the table in docs/design.md."""
    if key_given and not public_id_given and link is None:
        return LinkInvalid()
    if assistant is None:
        return NoSuchAssistant()
    if key_given and link is not None and link.assistant_id != assistant.id:
        return LinkInvalid()
    if assistant.published_version is None:
        return NotPublished()
    if assistant.status != "live":
        return AssistantOffline()
    if key_given:
        if link is None:
            return LinkInvalid()
        if link.revoked:
            return LinkRevoked()
        if link.exhausted:
            return LinkExhausted()
        return Admission(assistant, link)
    if assistant.share_mode != "public":
        return KeyRequired()
    return Admission(assistant, None)


ASSISTANT_COLUMNS = (
    Assistant.id,
    Assistant.public_id,
    Assistant.name,
    Assistant.description,
    Assistant.published_version,
    Assistant.status,
    Assistant.share_mode,
    Assistant.store_transcripts,
    Assistant.allowed_domains,
    AssistantVersion.greeting,
    AssistantVersion.settings,
)
LINK_COLUMNS = (
    PrivateLink.id.label("link_id"),
    PrivateLink.assistant_id.label("link_assistant_id"),
    PrivateLink.name.label("link_name"),
    PrivateLink.revoked_at,
    PrivateLink.max_sessions,
    PrivateLink.sessions_used,
)
PUBLISHED = and_(
    AssistantVersion.assistant_id == Assistant.id, AssistantVersion.number == Assistant.published_version
)


def assistant_facts(row: Mapping[str, Any]) -> AssistantFacts | None:
    if row["id"] is None:
        return None
    return AssistantFacts(
        id=row["id"],
        public_id=row["public_id"],
        name=row["name"],
        description=row["description"],
        published_version=row["published_version"],
        status=row["status"],
        share_mode=row["share_mode"],
        store_transcripts=row["store_transcripts"],
        greeting=row["greeting"] or "",
        settings=row["settings"],
        allowed_domains=tuple(row["allowed_domains"] or ()),
    )


def link_facts(row: Mapping[str, Any]) -> LinkFacts:
    return LinkFacts(
        id=row["link_id"],
        assistant_id=row["link_assistant_id"],
        name=row["link_name"],
        revoked=row["revoked_at"] is not None,
        max_sessions=row["max_sessions"],
        sessions_used=row["sessions_used"],
    )


# The hot path's statements are built and compiled once (db.HotStatement): building a statement
# and its cache key costs more than running it on a local database (bench/session_start.py).
_BY_KEY = HotStatement(
    select(*LINK_COLUMNS, *ASSISTANT_COLUMNS)
    .select_from(PrivateLink)
    .outerjoin(Assistant, and_(Assistant.id == PrivateLink.assistant_id, Assistant.deleted_at.is_(None)))
    .outerjoin(AssistantVersion, PUBLISHED)
    .where(PrivateLink.key_digest == bindparam("p_digest"))
)
_BY_PUBLIC_ID = HotStatement(
    select(*ASSISTANT_COLUMNS)
    .outerjoin(AssistantVersion, PUBLISHED)
    .where(Assistant.public_id == bindparam("p_public_id"), Assistant.deleted_at.is_(None))
)
# Takes one use of a link that is still active and has one left; the caller inserts the session
# in the same statement (PostgreSQL) or transaction (SQLite).
TAKE_USE = (
    update(PrivateLink)
    .where(
        PrivateLink.id == bindparam("p_link_id"),
        PrivateLink.revoked_at.is_(None),
        or_(PrivateLink.max_sessions == 0, PrivateLink.sessions_used < PrivateLink.max_sessions),
    )
    .values(sessions_used=PrivateLink.sessions_used + 1, last_used_at=bindparam("p_now"))
    .returning(PrivateLink.id, PrivateLink.sessions_used)
)

_LINK_BY_ID = HotStatement(select(*LINK_COLUMNS).where(PrivateLink.id == bindparam("p_link_id")))


async def load_link(db: Db, *, link_id: int) -> LinkFacts | None:
    row = await _LINK_BY_ID.one_or_none(await connection_of(db), {"p_link_id": link_id})
    return link_facts(row) if row is not None else None


async def load_assistant(
    db: Db, *, public_id: str | None = None, assistant_id: int | None = None
) -> AssistantFacts | None:
    if public_id is not None:
        row = await _BY_PUBLIC_ID.one_or_none(await connection_of(db), {"p_public_id": public_id})
        return assistant_facts(row) if row is not None else None
    query = select(*ASSISTANT_COLUMNS).outerjoin(AssistantVersion, PUBLISHED)
    query = query.where(Assistant.id == assistant_id, Assistant.deleted_at.is_(None))
    row = (await (await connection_of(db)).execute(query)).mappings().one_or_none()
    return assistant_facts(row) if row is not None else None


async def _load_by_key(db: Db, key: str) -> tuple[LinkFacts | None, AssistantFacts | None]:
    """A key's link and its assistant (with the published version) in one query."""
    if not is_well_formed(key, KEY_PREFIX):
        return None, None
    row = await _BY_KEY.one_or_none(await connection_of(db), {"p_digest": digest(key)})
    if row is None:
        return None, None
    return link_facts(row), assistant_facts(row)


async def check(db: Db, *, public_id: str | None, key: str | None) -> Admission:
    """Ask the gate without taking a use: what the chat page shows before Start."""
    link, assistant = await _load_by_key(db, key) if key is not None else (None, None)
    if public_id is not None and (assistant is None or assistant.public_id != public_id):
        assistant = await load_assistant(db, public_id=public_id)
    decision = decide(public_id_given=public_id is not None, key_given=key is not None, assistant=assistant, link=link)
    if isinstance(decision, GateRefusal):
        if assistant is not None and not isinstance(decision, NoSuchAssistant):
            decision.assistant_id = assistant.id
        raise decision
    return decision


def with_use_taken(admission: Admission, sessions_used: int) -> Admission:
    assert admission.link is not None
    return Admission(admission.assistant, LinkFacts(**{**admission.link.__dict__, "sessions_used": sessions_used}))


async def use_not_taken(db: Db, admission: Admission) -> GateRefusal:
    """Why `TAKE_USE` changed nothing: another session took the last use, or the owner revoked
    the link, since `check` looked."""
    assert admission.link is not None
    fresh = await load_link(db, link_id=admission.link.id)
    refusal = LinkRevoked() if fresh is None or fresh.revoked else LinkExhausted()
    refusal.assistant_id = admission.assistant.id
    refusal.at_session_start = True
    return refusal
