"""The guest path's one way to the database: every statement of session start, resume, end,
messages, replies, the OpenAI-compatible endpoint and refusal counts.

Services call these functions with plain values and get plain values back (the gate's facts,
`SessionRecord`, `MessageRecord`); no SQLAlchemy object or driver type leaves this module.

One transaction rule, the same on SQLite and PostgreSQL: **each public method is one
transaction**, committed when it returns, rolled back if it raises.
- PostgreSQL: a method of one statement runs it as its own transaction (no BEGIN and COMMIT
  round trips); so where two writes must be saved together they are written as one statement
  (a data-modifying WITH: taking a link's use and inserting the session, a message and its
  session's counters). Methods of several statements run between BEGIN and COMMIT.
- SQLite: a write takes this process's writer queue (`db.writer_lock`, a FIFO), then BEGIN
  IMMEDIATE ... COMMIT, so writers wait in order instead of polling SQLite's busy handler (the
  tail of session starts, docs/benchmarks.md). Reads take no lock: in WAL mode they never wait
  for a writer.

Speed: the statements are built and compiled once per dialect and run on the driver connection
beneath SQLAlchemy's pooled one (chat/_driver.py says why).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String, Text, and_, bindparam, func, insert, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ColumnElement

from portico.access.gate import AssistantFacts, LinkFacts
from portico.chat._driver import Statement, Tx
from portico.db import writer_lock
from portico.metrics.quotas import day_of
from portico.metrics.rollup import hour_of
from portico.models import Assistant, AssistantVersion, ChatSession, DailyUsage, Message, PrivateLink, RefusalHourly
from portico.models.base import UTCDateTime
from portico.vocabulary import EndReason, Role


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
    and the settings, greeting and digest of the version it started on."""

    session: SessionRecord
    assistant: AssistantFacts | None
    link: LinkFacts | None
    settings: dict[str, Any]
    greeting: str
    version_digest: str


@dataclass(frozen=True)
class MessageRecord:
    id: int
    role: str
    content: str | None
    created_at: datetime
    error_code: str | None


@dataclass(frozen=True)
class Reply:
    session_id: int
    content: str | None
    first_token_ms: int | None
    duration_ms: int
    tokens_in: int
    tokens_out: int
    error_code: str | None


@dataclass(frozen=True)
class DailyCaps:
    """An assistant's daily quotas (0 = unlimited), checked as a session starts."""

    sessions: int = 0
    tokens: int = 0


class DailyLimitReached(Exception):
    """A start refused by the assistant's daily quota: nothing of it was saved."""


class GuestSave(StrEnum):
    """What became of a guest's message."""

    SAVED = "saved"
    ENDED = "ended"
    MESSAGE_LIMIT = "message_limit"
    DAILY_LIMIT = "daily_limit"


class GuestStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._postgres = engine.dialect.name == "postgresql"
        # Configurations by content digest: a version never changes, and equal digests mean equal
        # configurations, so any instance may keep them in memory and skip the knowledge text.
        self._configs: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- the gate's facts -------------------------------------------------------------------

    async def facts_by_key(self, key_digest: str) -> tuple[LinkFacts, AssistantFacts | None] | None:
        """A private link by its key's digest, with its assistant and published version."""
        async with self._read() as tx:
            row = await tx.one(_BY_KEY, {"p_digest": key_digest})
        return None if row is None else (_link_facts(row), _assistant_facts(row))

    async def facts_by_public_id(self, public_id: str) -> AssistantFacts | None:
        async with self._read() as tx:
            row = await tx.one(_BY_PUBLIC_ID, {"p_public_id": public_id})
        return None if row is None else _assistant_facts(row)

    async def link(self, link_id: int) -> LinkFacts | None:
        async with self._read() as tx:
            row = await tx.one(_LINK_BY_ID, {"p_link_id": link_id})
        return None if row is None else _link_facts(row)

    # -- sessions ---------------------------------------------------------------------------

    async def start_session(
        self,
        *,
        assistant_id: int,
        version: int,
        channel: str,
        token_digest: str,
        now: datetime,
        daily: DailyCaps = DailyCaps(),
    ) -> int:
        """Insert an anonymous session (no link); its id. Raises DailyLimitReached (see below)."""
        params = _session_params(assistant_id, version, None, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=False)
        else:
            async with self._write() as tx:
                row = await tx.one(_INSERT_SESSION, params)
        assert row is not None
        return int(row["id"])

    async def start_session_taking_use(
        self,
        *,
        assistant_id: int,
        version: int,
        link_id: int,
        channel: str,
        token_digest: str,
        now: datetime,
        daily: DailyCaps = DailyCaps(),
    ) -> tuple[int, int] | None:
        """Take one use of a link still active with one left, and insert its session, together.

        Returns the session's id and the link's uses now taken, or None when no use was left
        (or the link was revoked) by the time the statement ran. Raises DailyLimitReached (below).
        """
        params = _session_params(assistant_id, version, link_id, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=True)
            return None if row is None else (row["id"], row["sessions_used"])
        async with self._write() as tx:
            if self._postgres:
                row = await tx.one(_INSERT_SESSION_TAKING_USE, params)
                return None if row is None else (row["id"], row["sessions_used"])
            taken = await tx.one(_TAKE_USE, params)
            if taken is None:
                return None
            row = await tx.one(_INSERT_SESSION, params)
        assert row is not None
        return row["id"], taken["sessions_used"]

    async def _start_within_day(self, params: dict[str, Any], daily: DailyCaps, *, link: bool) -> dict[str, Any] | None:
        """A start of an assistant with a daily quota, in one transaction: refused (DailyLimitReached)
        when today's tokens are used up; else the link's use is taken and the session inserted as
        without a quota, then today's session count is raised only while below the cap. When it is
        not, the whole start rolls back, the link's use with it, so N admits exactly N."""
        params = {
            **params,
            "p_day": day_of(params["p_now"]),
            "p_sessions_cap": daily.sessions,
            "p_tokens_cap": daily.tokens,
        }
        async with self._write(statements=3) as tx:
            if daily.tokens and await tx.one(_OVER_TOKENS, params) is not None:
                raise DailyLimitReached()
            if not link:
                row = await tx.one(_INSERT_SESSION, params)
            elif self._postgres:
                row = await tx.one(_INSERT_SESSION_TAKING_USE, params)
            elif (taken := await tx.one(_TAKE_USE, params)) is None:
                row = None
            else:
                inserted = await tx.one(_INSERT_SESSION, params)
                row = None if inserted is None else {**inserted, "sessions_used": taken["sessions_used"]}
            if row is None:
                return None
            count = _COUNT_SESSION_PG if self._postgres else _COUNT_SESSION_SQLITE
            if daily.sessions and await tx.one(count, params) is None:
                raise DailyLimitReached()  # rolls back the session and the link's use
        return row

    async def open_session(self, session_id: int) -> OpenSession | None:
        async with self._read() as tx:
            row = await tx.one(_OPEN, {"p_session_id": session_id})
        if row is None:
            return None
        session = SessionRecord(**{name: row[f"session_{name}"] for name in _SESSION_RECORD_FIELDS})
        link = _link_facts(row) if row["link_id"] is not None else None
        return OpenSession(
            session,
            _assistant_facts(row),
            link,
            row["version_settings"],
            row["version_greeting"] or "",
            row["version_digest"],
        )

    async def end_session(self, session_id: int, *, reason: EndReason, at: datetime) -> bool:
        """End a session still open; False when it had already ended."""
        async with self._write() as tx:
            row = await tx.one(_END, {"p_session_id": session_id, "p_at": at, "p_reason": reason.value})
        return row is not None

    # -- messages ---------------------------------------------------------------------------

    async def version_config(self, *, assistant_id: int, number: int, digest: str) -> dict[str, Any]:
        """A published version's configuration (cached by its digest), with the digest in it."""
        config = self._configs.get(digest)
        if config is None:
            async with self._read() as tx:
                row = await tx.one(_CONFIG, {"p_assistant_id": assistant_id, "p_number": number})
            assert row is not None
            config = self._configs[digest] = {**row["config"], "digest": digest}
            while len(self._configs) > 64:
                self._configs.popitem(last=False)
        self._configs.move_to_end(digest)
        return config

    async def history(self, session_id: int, *, turns: int) -> list[tuple[str, str]]:
        """The session's last `turns` stored messages, oldest first, as (role, content)."""
        async with self._read() as tx:
            rows = await tx.all(_HISTORY, {"p_session_id": session_id, "p_limit": turns})
        return [(row["role"], row["content"]) for row in reversed(rows)]

    async def save_guest_message(
        self,
        session_id: int,
        *,
        content: str | None,
        now: datetime,
        cap: int = 0,
        assistant_id: int | None = None,
        tokens_per_day: int = 0,
    ) -> GuestSave:
        """Save a guest's message and count it, only while the session is open, has had fewer
        than `cap` guest messages (0 = no cap) and, with `tokens_per_day`, while the assistant's
        tokens today are below it. The same one statement, with or without a cap."""
        params = {"p_session_id": session_id, "p_content": content, "p_now": now, "p_cap": cap}
        save, touch = _SAVE_MESSAGE, _TOUCH_SESSION
        if tokens_per_day:
            params.update(p_assistant_id=assistant_id, p_day=day_of(now), p_tokens_cap=tokens_per_day)
            save, touch = _SAVE_MESSAGE_WITHIN_DAY, _TOUCH_SESSION_WITHIN_DAY
        async with self._write() as tx:
            if self._postgres:
                saved = await tx.one(save, params) is not None
            else:
                saved = await tx.one(touch, params) is not None
                if saved:
                    await tx.all(_INSERT_MESSAGE, params)
        if saved:
            return GuestSave.SAVED
        # Refused: say why, from the session as it now is (only refusals pay for this read).
        async with self._read() as tx:
            row = await tx.one(_GUEST_MESSAGES, params)
        if row is None or row["ended_at"] is not None:
            return GuestSave.ENDED
        if cap and row["guest_messages"] >= cap:
            return GuestSave.MESSAGE_LIMIT
        return GuestSave.DAILY_LIMIT if tokens_per_day else GuestSave.ENDED

    async def save_reply(self, reply: Reply, *, now: datetime, count_tokens_of: int | None = None) -> int:
        """Save a reply and add it to its session's totals; the reply's id. With `count_tokens_of`
        (an assistant with a tokens_per_day quota), its tokens are added to the assistant's day
        in the same transaction."""
        params = {
            "p_session_id": reply.session_id,
            "p_content": reply.content,
            "p_now": now,
            "p_first_token_ms": reply.first_token_ms,
            "p_duration_ms": reply.duration_ms,
            "p_tokens_in": reply.tokens_in,
            "p_tokens_out": reply.tokens_out,
            "p_error_code": reply.error_code,
        }
        if count_tokens_of is not None:
            params.update(p_assistant_id=count_tokens_of, p_day=day_of(now))
        async with self._write(statements=1 if count_tokens_of is None else 2) as tx:
            if self._postgres:
                row = await tx.one(_SAVE_REPLY, params)
            else:
                await tx.all(_COUNT_REPLY, params)
                row = await tx.one(_INSERT_REPLY, params)
            if count_tokens_of is not None:
                await tx.all(_COUNT_TOKENS_PG if self._postgres else _COUNT_TOKENS_SQLITE, params)
        assert row is not None
        return int(row["id"])

    async def transcript(self, session_id: int) -> list[MessageRecord]:
        async with self._read() as tx:
            rows = await tx.all(_TRANSCRIPT, {"p_session_id": session_id})
        return [MessageRecord(**row) for row in rows]

    # -- refusals and cut-offs --------------------------------------------------------------

    async def count_refusal(self, *, assistant_id: int, code: str, now: datetime) -> None:
        """One refusal in the hour's count, by code only: nothing about who was refused."""
        statement = _COUNT_REFUSAL_PG if self._postgres else _COUNT_REFUSAL_SQLITE
        async with self._write() as tx:
            await tx.all(statement, {"p_assistant_id": assistant_id, "p_hour": hour_of(now), "p_code": code})

    async def stopped(
        self, *, assistant_ids: set[int], link_ids: set[int]
    ) -> tuple[dict[int, tuple[str, str, datetime | None]], set[int]]:
        """These assistants' (status, share mode, deleted_at), and which of these links are revoked."""
        # Asked a few times a second while streams run (cutoff.py), with ids that change: built
        # per call, the ids written into the SQL (integers only).
        find_assistants = select(Assistant.id, Assistant.status, Assistant.share_mode, Assistant.deleted_at).where(
            Assistant.id.in_(sorted(int(i) for i in assistant_ids))
        )
        find_links = select(PrivateLink.id).where(
            PrivateLink.id.in_(sorted(int(i) for i in link_ids)), PrivateLink.revoked_at.is_not(None)
        )
        async with self._read(statements=2) as tx:
            assistants = await tx.all(Statement(find_assistants, literal=True), {})
            links = await tx.all(Statement(find_links, literal=True), {}) if link_ids else []
        stopped = {row["id"]: (row["status"], row["share_mode"], row["deleted_at"]) for row in assistants}
        return stopped, {row["id"] for row in links}

    # -- transactions -----------------------------------------------------------------------

    @asynccontextmanager
    async def _read(self, *, statements: int = 1) -> AsyncIterator[Tx]:
        async with self._engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            tx = Tx(driver, self._dialect)
            if statements == 1:
                yield tx
            else:
                async with tx.transaction(immediate=False):
                    yield tx

    @asynccontextmanager
    async def _write(self, *, statements: int = 1) -> AsyncIterator[Tx]:
        async with writer_lock(self._engine), self._engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            tx = Tx(driver, self._dialect)
            if self._postgres and statements == 1:
                yield tx
            else:
                async with tx.transaction(immediate=True):
                    yield tx


# -- the statements -------------------------------------------------------------------------

_ASSISTANT_COLUMNS = (
    Assistant.id,
    Assistant.public_id,
    Assistant.name,
    Assistant.description,
    Assistant.published_version,
    Assistant.status,
    Assistant.share_mode,
    Assistant.store_transcripts,
    Assistant.allowed_domains,
    Assistant.messages_per_session,
    Assistant.sessions_per_day,
    Assistant.tokens_per_day,
    AssistantVersion.greeting,
    AssistantVersion.settings,
    AssistantVersion.digest.label("published_digest"),
)
_LINK_COLUMNS = (
    PrivateLink.id.label("link_id"),
    PrivateLink.assistant_id.label("link_assistant_id"),
    PrivateLink.name.label("link_name"),
    PrivateLink.revoked_at,
    PrivateLink.max_sessions,
    PrivateLink.sessions_used,
)
_PUBLISHED = and_(AssistantVersion.assistant_id == Assistant.id, AssistantVersion.number == Assistant.published_version)


def _assistant_facts(row: Mapping[str, Any]) -> AssistantFacts | None:
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
        published_digest=row["published_digest"] or "",
        messages_per_session=row["messages_per_session"],
        sessions_per_day=row["sessions_per_day"],
        tokens_per_day=row["tokens_per_day"],
    )


def _link_facts(row: Mapping[str, Any]) -> LinkFacts:
    return LinkFacts(
        id=row["link_id"],
        assistant_id=row["link_assistant_id"],
        name=row["link_name"],
        revoked=row["revoked_at"] is not None,
        max_sessions=row["max_sessions"],
        sessions_used=row["sessions_used"],
    )


_BY_KEY = Statement(
    select(*_LINK_COLUMNS, *_ASSISTANT_COLUMNS)
    .select_from(PrivateLink)
    .outerjoin(Assistant, and_(Assistant.id == PrivateLink.assistant_id, Assistant.deleted_at.is_(None)))
    .outerjoin(AssistantVersion, _PUBLISHED)
    .where(PrivateLink.key_digest == bindparam("p_digest"))
)
_BY_PUBLIC_ID = Statement(
    select(*_ASSISTANT_COLUMNS)
    .outerjoin(AssistantVersion, _PUBLISHED)
    .where(Assistant.public_id == bindparam("p_public_id"), Assistant.deleted_at.is_(None))
)
_LINK_BY_ID = Statement(select(*_LINK_COLUMNS).where(PrivateLink.id == bindparam("p_link_id")))

# A session's values; its running totals take their server defaults (include_defaults=False).
_SESSION_VALUES: dict[str, ColumnElement[Any]] = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "version_number": bindparam("p_version_number", type_=Integer),
    "link_id": bindparam("p_link_id", type_=Integer),
    "channel": bindparam("p_channel", type_=String),
    "token_digest": bindparam("p_token_digest", type_=String),
    "started_at": bindparam("p_now", type_=UTCDateTime),
    "last_activity_at": bindparam("p_now", type_=UTCDateTime),
}


def _session_params(
    assistant_id: int, version: int, link_id: int | None, channel: str, token_digest: str, now: datetime
) -> dict[str, Any]:
    return {
        "p_assistant_id": assistant_id,
        "p_version_number": version,
        "p_link_id": link_id,
        "p_channel": channel,
        "p_token_digest": token_digest,
        "p_now": now,
    }


_INSERT_SESSION = Statement(
    insert(ChatSession)
    .from_select(list(_SESSION_VALUES), select(*_SESSION_VALUES.values()), include_defaults=False)
    .returning(ChatSession.id)
)
# Takes one use of a link that is still active and has one left (docs/design.md, "The gate").
_TAKE_USE_UPDATE = (
    update(PrivateLink)
    .where(
        PrivateLink.id == bindparam("p_link_id"),
        PrivateLink.revoked_at.is_(None),
        or_(PrivateLink.max_sessions == 0, PrivateLink.sessions_used < PrivateLink.max_sessions),
    )
    .values(sessions_used=PrivateLink.sessions_used + 1, last_used_at=bindparam("p_now"))
    .returning(PrivateLink.id, PrivateLink.sessions_used)
)
# SQLite has no UPDATE inside WITH: it runs these two in one transaction, which holds its one
# write lock anyway. On PostgreSQL one statement, so the link's row is locked only while it runs,
# however many guests start sessions on the same link at once (bench/session_start.py).
_TAKE_USE = Statement(_TAKE_USE_UPDATE)
_USED = _TAKE_USE_UPDATE.cte("used")
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
_INSERT_SESSION_TAKING_USE = Statement(
    select(_INSERTED.c.id, _USED.c.sessions_used).select_from(_INSERTED).join(_USED, true())
)

# A session with all that opening it needs, in one query: the gate's facts about its assistant
# (none when deleted) and its link, and the settings and digest of the version it started on.
_SessionVersion = aliased(AssistantVersion, name="session_version")
_SESSION_RECORD_FIELDS = tuple(SessionRecord.__dataclass_fields__)
_OPEN = Statement(
    select(
        *(getattr(ChatSession, name).label(f"session_{name}") for name in _SESSION_RECORD_FIELDS),
        _SessionVersion.settings.label("version_settings"),
        _SessionVersion.greeting.label("version_greeting"),
        _SessionVersion.digest.label("version_digest"),
        *_ASSISTANT_COLUMNS,
        *_LINK_COLUMNS,
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
    .outerjoin(AssistantVersion, _PUBLISHED)
    .outerjoin(PrivateLink, PrivateLink.id == ChatSession.link_id)
    .where(ChatSession.id == bindparam("p_session_id"))
)
_END = Statement(
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"), ChatSession.ended_at.is_(None))
    .values(ended_at=bindparam("p_at"), end_reason=bindparam("p_reason"))
    .returning(ChatSession.id)
)

_CONFIG = Statement(
    select(AssistantVersion.config).where(
        AssistantVersion.assistant_id == bindparam("p_assistant_id"),
        AssistantVersion.number == bindparam("p_number"),
    )
)
_HISTORY = Statement(
    select(Message.role, Message.content)
    .where(Message.session_id == bindparam("p_session_id"), Message.content.is_not(None), Message.error_code.is_(None))
    .order_by(Message.id.desc())
    .limit(bindparam("p_limit", type_=Integer))
)
# A guest's message and its count are saved together, and only while the session is open and
# below its assistant's messages_per_session (`p_cap`, 0 = none): the one condition makes the cap
# exact however many messages arrive at once, and costs an uncapped session nothing.
_TOUCH = (
    update(ChatSession)
    .where(
        ChatSession.id == bindparam("p_session_id"),
        ChatSession.ended_at.is_(None),
        or_(bindparam("p_cap", type_=Integer) == 0, ChatSession.guest_messages < bindparam("p_cap", type_=Integer)),
    )
    .values(
        last_activity_at=bindparam("p_now"),
        message_count=ChatSession.message_count + 1,
        guest_messages=ChatSession.guest_messages + 1,
    )
    .returning(ChatSession.id)
)
# With a tokens_per_day quota, also only while the assistant's tokens today are below it.
_TOKENS_TODAY = (
    select(DailyUsage.tokens)
    .where(DailyUsage.assistant_id == bindparam("p_assistant_id"), DailyUsage.day == bindparam("p_day"))
    .scalar_subquery()
)
_TOUCH_WITHIN_DAY = _TOUCH.where(func.coalesce(_TOKENS_TODAY, 0) < bindparam("p_tokens_cap", type_=Integer))
_GUEST_VALUES = {
    "role": literal(Role.GUEST.value, String),
    "content": bindparam("p_content", type_=Text),
    "created_at": bindparam("p_now", type_=UTCDateTime),
}


def _save_message(touch: Any) -> Statement:
    touched = touch.cte("touched")
    return Statement(
        insert(Message)
        .from_select(["session_id", *_GUEST_VALUES], select(touched.c.id, *_GUEST_VALUES.values()))
        .returning(Message.id)
    )


_SAVE_MESSAGE = _save_message(_TOUCH)
_SAVE_MESSAGE_WITHIN_DAY = _save_message(_TOUCH_WITHIN_DAY)
_TOUCH_SESSION = Statement(_TOUCH)
_TOUCH_SESSION_WITHIN_DAY = Statement(_TOUCH_WITHIN_DAY)
_GUEST_MESSAGES = Statement(
    select(ChatSession.ended_at, ChatSession.guest_messages).where(ChatSession.id == bindparam("p_session_id"))
)
# Every INSERT says what it returns: PostgreSQL's compiler would otherwise add the primary key.
_INSERT_MESSAGE = Statement(
    insert(Message).values(session_id=bindparam("p_session_id"), **_GUEST_VALUES).returning(Message.id)
)
# A reply and the session's running totals, likewise.
_COUNT = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"))
    .values(
        last_activity_at=bindparam("p_now"),
        message_count=ChatSession.message_count + 1,
        tokens_in=ChatSession.tokens_in + bindparam("p_tokens_in", type_=Integer),
        tokens_out=ChatSession.tokens_out + bindparam("p_tokens_out", type_=Integer),
    )
)
_REPLY = (
    insert(Message)
    .values(
        session_id=bindparam("p_session_id"),
        role=Role.ASSISTANT.value,
        content=bindparam("p_content"),
        created_at=bindparam("p_now"),
        first_token_ms=bindparam("p_first_token_ms"),
        duration_ms=bindparam("p_duration_ms"),
        tokens_in=bindparam("p_tokens_in"),
        tokens_out=bindparam("p_tokens_out"),
        error_code=bindparam("p_error_code"),
    )
    .returning(Message.id)
)
_SAVE_REPLY = Statement(_REPLY.add_cte(_COUNT.cte("counted")))
_COUNT_REPLY = Statement(_COUNT)
_INSERT_REPLY = Statement(_REPLY)
_TRANSCRIPT = Statement(
    select(Message.id, Message.role, Message.content, Message.created_at, Message.error_code)
    .where(Message.session_id == bindparam("p_session_id"))
    .order_by(Message.id)
)

_REFUSAL_ROW = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "hour": bindparam("p_hour", type_=UTCDateTime),
    "code": bindparam("p_code", type_=String),
    "count": 1,
}
_COUNT_REFUSAL_PG = Statement(
    pg_insert(RefusalHourly)
    .values(_REFUSAL_ROW)
    .on_conflict_do_update(index_elements=["assistant_id", "hour", "code"], set_={"count": RefusalHourly.count + 1})
)
_COUNT_REFUSAL_SQLITE = Statement(
    sqlite_insert(RefusalHourly)
    .values(_REFUSAL_ROW)
    .on_conflict_do_update(index_elements=["assistant_id", "hour", "code"], set_={"count": RefusalHourly.count + 1})
)

# Today's use of an assistant with a daily quota (docs/design.md, "Quotas").
_OVER_TOKENS = Statement(
    select(DailyUsage.tokens).where(
        DailyUsage.assistant_id == bindparam("p_assistant_id"),
        DailyUsage.day == bindparam("p_day"),
        DailyUsage.tokens >= bindparam("p_tokens_cap", type_=Integer),
    )
)
_DAY_ROW = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "day": bindparam("p_day", type_=UTCDateTime),
}


def _count_session(insert_: Any) -> Statement:
    """One more session today, only while below the cap: the conflicting row is locked and the
    condition checked on its latest value, so concurrent starts never pass the cap together."""
    statement = insert_(DailyUsage).values({**_DAY_ROW, "sessions": 1, "tokens": 0})
    return Statement(
        statement.on_conflict_do_update(
            index_elements=["assistant_id", "day"],
            set_={"sessions": DailyUsage.sessions + 1},
            where=DailyUsage.sessions < bindparam("p_sessions_cap", type_=Integer),
        ).returning(DailyUsage.sessions)
    )


def _count_tokens(insert_: Any) -> Statement:
    tokens = bindparam("p_tokens_in", type_=Integer) + bindparam("p_tokens_out", type_=Integer)
    statement = insert_(DailyUsage).values({**_DAY_ROW, "sessions": 0, "tokens": tokens})
    return Statement(
        statement.on_conflict_do_update(
            index_elements=["assistant_id", "day"], set_={"tokens": DailyUsage.tokens + statement.excluded.tokens}
        )
    )


_COUNT_SESSION_PG = _count_session(pg_insert)
_COUNT_SESSION_SQLITE = _count_session(sqlite_insert)
_COUNT_TOKENS_PG = _count_tokens(pg_insert)
_COUNT_TOKENS_SQLITE = _count_tokens(sqlite_insert)
