"""The guest store's statements, built once at import (chat/store.py runs them; nothing else
imports this module). Each is compiled once per dialect (chat/_driver.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ColumnElement

from portico.chat._driver import Statement
from portico.chat.records import AssistantFacts, LinkFacts, SessionRecord
from portico.models import (
    Assistant,
    AssistantVersion,
    ChatSession,
    DailyUsage,
    Message,
    PrivateLink,
    RefusalHourly,
    RetiredLinkKey,
)
from portico.models.base import UTCDateTime
from portico.vocabulary import Role

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
    Assistant.messages_per_session,
    Assistant.sessions_per_day,
    Assistant.tokens_per_day,
    Assistant.widget_id,
    Assistant.access_code_hash,
    Assistant.public_link_expires_at,
    AssistantVersion.greeting,
    AssistantVersion.starters,
    AssistantVersion.settings,
    AssistantVersion.digest.label("published_digest"),
)
LINK_COLUMNS = (
    PrivateLink.id.label("link_id"),
    PrivateLink.assistant_id.label("link_assistant_id"),
    PrivateLink.name.label("link_name"),
    PrivateLink.revoked_at,
    PrivateLink.max_sessions,
    PrivateLink.sessions_used,
    PrivateLink.paused.label("link_paused"),
    PrivateLink.expires_at.label("link_expires_at"),
)
PUBLISHED = and_(AssistantVersion.assistant_id == Assistant.id, AssistantVersion.number == Assistant.published_version)


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
        starters=tuple(row["starters"] or ()),
        settings=row["settings"],
        allowed_domains=tuple(row["allowed_domains"] or ()),
        published_digest=row["published_digest"] or "",
        messages_per_session=row["messages_per_session"],
        sessions_per_day=row["sessions_per_day"],
        tokens_per_day=row["tokens_per_day"],
        widget_id=row["widget_id"],
        access_code_hash=row["access_code_hash"],
        public_link_expires_at=row["public_link_expires_at"],
    )


def link_facts(row: Mapping[str, Any]) -> LinkFacts:
    return LinkFacts(
        id=row["link_id"],
        assistant_id=row["link_assistant_id"],
        name=row["link_name"],
        revoked=row["revoked_at"] is not None,
        max_sessions=row["max_sessions"],
        sessions_used=row["sessions_used"],
        paused=bool(row["link_paused"]),
        expires_at=row["link_expires_at"],
    )


BY_KEY = Statement(
    select(*LINK_COLUMNS, *ASSISTANT_COLUMNS)
    .select_from(PrivateLink)
    .outerjoin(Assistant, and_(Assistant.id == PrivateLink.assistant_id, Assistant.deleted_at.is_(None)))
    .outerjoin(AssistantVersion, PUBLISHED)
    .where(PrivateLink.key_digest == bindparam("p_digest"))
)
BY_PUBLIC_ID = Statement(
    select(*ASSISTANT_COLUMNS)
    .outerjoin(AssistantVersion, PUBLISHED)
    .where(Assistant.public_id == bindparam("p_public_id"), Assistant.deleted_at.is_(None))
)
BY_WIDGET_ID = Statement(
    select(*ASSISTANT_COLUMNS)
    .outerjoin(AssistantVersion, PUBLISHED)
    .where(Assistant.widget_id == bindparam("p_widget_id"), Assistant.deleted_at.is_(None))
)
# A retired key (its link reissued): the assistant of the link that had it.
RETIRED_KEY = Statement(
    select(PrivateLink.assistant_id)
    .join(RetiredLinkKey, RetiredLinkKey.link_id == PrivateLink.id)
    .where(RetiredLinkKey.key_digest == bindparam("p_digest"))
)
LINK_BY_ID = Statement(select(*LINK_COLUMNS).where(PrivateLink.id == bindparam("p_link_id")))

# A session's values; its running totals take their server defaults (include_defaults=False).
SESSION_VALUES: dict[str, ColumnElement[Any]] = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "version_number": bindparam("p_version_number", type_=Integer),
    "link_id": bindparam("p_link_id", type_=Integer),
    "channel": bindparam("p_channel", type_=String),
    "token_digest": bindparam("p_token_digest", type_=String),
    "started_at": bindparam("p_now", type_=UTCDateTime),
    "last_activity_at": bindparam("p_now", type_=UTCDateTime),
}


def session_params(
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


INSERT_SESSION = Statement(
    insert(ChatSession)
    .from_select(list(SESSION_VALUES), select(*SESSION_VALUES.values()), include_defaults=False)
    .returning(ChatSession.id)
)
# Takes one use of a link that is still active (not deleted, paused or expired) and has one left
# (docs/design.md, "The gate"): a link paused between the gate's look and this finds no row.
TAKE_USE_UPDATE = (
    update(PrivateLink)
    .where(
        PrivateLink.id == bindparam("p_link_id"),
        PrivateLink.revoked_at.is_(None),
        PrivateLink.paused.is_(False),
        or_(PrivateLink.expires_at.is_(None), PrivateLink.expires_at > bindparam("p_now", type_=UTCDateTime)),
        or_(PrivateLink.max_sessions == 0, PrivateLink.sessions_used < PrivateLink.max_sessions),
    )
    .values(sessions_used=PrivateLink.sessions_used + 1, last_used_at=bindparam("p_now"))
    .returning(PrivateLink.id, PrivateLink.sessions_used)
)
# SQLite has no UPDATE inside WITH: it runs these two in one transaction, which holds its one
# write lock anyway. On PostgreSQL one statement, so the link's row is locked only while it runs,
# however many guests start sessions on the same link at once (bench/session_start.py).
TAKE_USE = Statement(TAKE_USE_UPDATE)
USED = TAKE_USE_UPDATE.cte("used")
INSERTED = (
    insert(ChatSession)
    .from_select(
        list(SESSION_VALUES),
        select(*[USED.c.id if column == "link_id" else value for column, value in SESSION_VALUES.items()]),
        include_defaults=False,
    )
    .returning(ChatSession.id)
    .cte("inserted")
)
INSERT_SESSION_TAKING_USE = Statement(
    select(INSERTED.c.id, USED.c.sessions_used).select_from(INSERTED).join(USED, true())
)

# A session with all that opening it needs, in one query: the gate's facts about its assistant
# (none when deleted) and its link, and the settings and digest of the version it started on.
SessionVersion = aliased(AssistantVersion, name="session_version")
SESSION_RECORD_FIELDS = tuple(SessionRecord.__dataclass_fields__)
OPEN = Statement(
    select(
        *(getattr(ChatSession, name).label(f"session_{name}") for name in SESSION_RECORD_FIELDS),
        SessionVersion.settings.label("version_settings"),
        SessionVersion.greeting.label("version_greeting"),
        SessionVersion.starters.label("version_starters"),
        SessionVersion.digest.label("version_digest"),
        *ASSISTANT_COLUMNS,
        *LINK_COLUMNS,
    )
    .select_from(ChatSession)
    .join(
        SessionVersion,
        and_(
            SessionVersion.assistant_id == ChatSession.assistant_id,
            SessionVersion.number == ChatSession.version_number,
        ),
    )
    .outerjoin(Assistant, and_(Assistant.id == ChatSession.assistant_id, Assistant.deleted_at.is_(None)))
    .outerjoin(AssistantVersion, PUBLISHED)
    .outerjoin(PrivateLink, PrivateLink.id == ChatSession.link_id)
    .where(ChatSession.id == bindparam("p_session_id"))
)
END = Statement(
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"), ChatSession.ended_at.is_(None))
    .values(ended_at=bindparam("p_at"), end_reason=bindparam("p_reason"))
    .returning(ChatSession.id)
)

CONFIG = Statement(
    select(AssistantVersion.config).where(
        AssistantVersion.assistant_id == bindparam("p_assistant_id"),
        AssistantVersion.number == bindparam("p_number"),
    )
)
HISTORY = Statement(
    select(Message.role, Message.content)
    .where(Message.session_id == bindparam("p_session_id"), Message.content.is_not(None), Message.error_code.is_(None))
    .order_by(Message.id.desc())
    .limit(bindparam("p_limit", type_=Integer))
)
# A guest's message and its count are saved together, and only while the session is open and
# below its assistant's messages_per_session (`p_cap`, 0 = none): the one condition makes the cap
# exact however many messages arrive at once, and costs an uncapped session nothing.
TOUCH = (
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
TOKENS_TODAY = (
    select(DailyUsage.tokens)
    .where(DailyUsage.assistant_id == bindparam("p_assistant_id"), DailyUsage.day == bindparam("p_day"))
    .scalar_subquery()
)
TOUCH_WITHIN_DAY = TOUCH.where(func.coalesce(TOKENS_TODAY, 0) < bindparam("p_tokens_cap", type_=Integer))
GUEST_VALUES = {
    "role": literal(Role.GUEST.value, String),
    "content": bindparam("p_content", type_=Text),
    "created_at": bindparam("p_now", type_=UTCDateTime),
    "audio_ms": bindparam("p_audio_ms", type_=Integer),
}


def save_message(touch: Any) -> Statement:
    touched = touch.cte("touched")
    return Statement(
        insert(Message)
        .from_select(["session_id", *GUEST_VALUES], select(touched.c.id, *GUEST_VALUES.values()))
        .returning(Message.id)
    )


SAVE_MESSAGE = save_message(TOUCH)
SAVE_MESSAGE_WITHIN_DAY = save_message(TOUCH_WITHIN_DAY)
TOUCH_SESSION = Statement(TOUCH)
TOUCH_SESSION_WITHIN_DAY = Statement(TOUCH_WITHIN_DAY)
GUEST_MESSAGES = Statement(
    select(ChatSession.ended_at, ChatSession.guest_messages).where(ChatSession.id == bindparam("p_session_id"))
)
# Every INSERT says what it returns: PostgreSQL's compiler would otherwise add the primary key.
INSERT_MESSAGE = Statement(
    insert(Message).values(session_id=bindparam("p_session_id"), **GUEST_VALUES).returning(Message.id)
)
# A reply and the session's running totals, likewise.
COUNT = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"))
    .values(
        last_activity_at=bindparam("p_now"),
        message_count=ChatSession.message_count + 1,
        tokens_in=ChatSession.tokens_in + bindparam("p_tokens_in", type_=Integer),
        tokens_out=ChatSession.tokens_out + bindparam("p_tokens_out", type_=Integer),
    )
)
# What a finished reply records, whether it is inserted whole or its row (saved as it grew) updated.
REPLY_VALUES: dict[str, ColumnElement[Any]] = {
    "content": bindparam("p_content"),
    "first_token_ms": bindparam("p_first_token_ms"),
    "duration_ms": bindparam("p_duration_ms"),
    "tokens_in": bindparam("p_tokens_in"),
    "tokens_out": bindparam("p_tokens_out"),
    "error_code": bindparam("p_error_code"),
    "sources": bindparam("p_sources", type_=JSON),
    "answered": bindparam("p_answered", type_=Boolean),
}
REPLY = (
    insert(Message)
    .values(
        session_id=bindparam("p_session_id"),
        role=Role.ASSISTANT.value,
        created_at=bindparam("p_now"),
        **REPLY_VALUES,
    )
    .returning(Message.id)
)
SAVE_REPLY = Statement(REPLY.add_cte(COUNT.cte("counted")))
COUNT_REPLY = Statement(COUNT)
INSERT_REPLY = Statement(REPLY)
# Replies still streaming, saved as they grow, all of a process's at once (chat/growing.py): the
# new ones inserted in progress (no duration), the others' text updated, only while still in
# progress (a late batch never overwrites a final save). `saved_at` is the database's clock, so
# instances with skewed clocks agree. The inserted rows come back with their ids, which follow
# the order given (`n`): the store pairs them up by sorting.
_GROWING_COLUMNS = "session_id, role, content, created_at, first_token_ms, saved_at"
SAVE_GROWING_PG = Statement(
    text(
        f"""WITH grown AS (
    UPDATE messages AS m SET content = g.content, saved_at = now()
    FROM unnest(CAST(:p_ids AS INTEGER[]), CAST(:p_contents AS TEXT[])) AS g(id, content)
    WHERE m.id = g.id AND m.duration_ms IS NULL
)
INSERT INTO messages ({_GROWING_COLUMNS})
SELECT s.session_id, '{Role.ASSISTANT.value}', s.content, s.created_at, s.first_token_ms, now()
FROM unnest(
    CAST(:p_sessions AS INTEGER[]), CAST(:p_texts AS TEXT[]), CAST(:p_created AS TIMESTAMPTZ[]),
    CAST(:p_first AS INTEGER[])
) WITH ORDINALITY AS s(session_id, content, created_at, first_token_ms, n)
ORDER BY s.n
RETURNING id, session_id"""
    ).columns(id=Integer, session_id=Integer)
)
# SQLite: the same two writes, each one statement over a JSON array of rows, in one transaction.
GROW_SQLITE = Statement(
    text(
        """UPDATE messages SET content = json_extract(g.value, '$[1]'), saved_at = CURRENT_TIMESTAMP
FROM json_each(:p_grown) AS g
WHERE messages.id = json_extract(g.value, '$[0]') AND messages.duration_ms IS NULL"""
    )
)
START_GROWING_SQLITE = Statement(
    text(
        f"""INSERT INTO messages ({_GROWING_COLUMNS})
SELECT json_extract(value, '$[0]'), '{Role.ASSISTANT.value}', json_extract(value, '$[1]'),
    json_extract(value, '$[2]'), json_extract(value, '$[3]'), CURRENT_TIMESTAMP
FROM json_each(:p_started) ORDER BY key
RETURNING id, session_id"""
    ).columns(id=Integer, session_id=Integer)
)
FINISHED = update(Message).where(Message.id == bindparam("p_message_id")).values(**REPLY_VALUES).returning(Message.id)
FINISH_REPLY = Statement(FINISHED.add_cte(COUNT.cte("counted")))
FINISH_REPLY_ALONE = Statement(FINISHED)
# Readiness (/readyz): the migration the database is at.
SCHEMA_VERSION = Statement(select(column("version_num", String)).select_from(table("alembic_version")))
TRANSCRIPT = Statement(
    select(
        Message.id,
        Message.role,
        Message.content,
        Message.created_at,
        Message.error_code,
        Message.duration_ms,
        Message.sources,
        Message.answered,
        Message.rating,
        Message.rating_reason,
        Message.rating_comment,
        Message.audio_ms,
    )
    .where(Message.session_id == bindparam("p_session_id"))
    .order_by(Message.id)
)
# A guest's rating of a reply of their session that has finished (it has a duration); a second
# rating replaces the first. No row: the message is not such a reply (MESSAGE_KIND says why).
RATE = Statement(
    update(Message)
    .where(
        Message.id == bindparam("p_message_id"),
        Message.session_id == bindparam("p_session_id"),
        Message.role == Role.ASSISTANT.value,
        Message.duration_ms.is_not(None),
    )
    .values(
        rating=bindparam("p_rating", type_=String),
        rating_reason=bindparam("p_reason", type_=String),
        rating_comment=bindparam("p_comment", type_=Text),
        rated_at=bindparam("p_now", type_=UTCDateTime),
    )
    .returning(Message.id)
)
MESSAGE_KIND = Statement(
    select(Message.role, Message.duration_ms).where(
        Message.id == bindparam("p_message_id"), Message.session_id == bindparam("p_session_id")
    )
)

REFUSAL_ROW = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "hour": bindparam("p_hour", type_=UTCDateTime),
    "code": bindparam("p_code", type_=String),
    "count": 1,
}
COUNT_REFUSAL_PG = Statement(
    pg_insert(RefusalHourly)
    .values(REFUSAL_ROW)
    .on_conflict_do_update(index_elements=["assistant_id", "hour", "code"], set_={"count": RefusalHourly.count + 1})
)
COUNT_REFUSAL_SQLITE = Statement(
    sqlite_insert(RefusalHourly)
    .values(REFUSAL_ROW)
    .on_conflict_do_update(index_elements=["assistant_id", "hour", "code"], set_={"count": RefusalHourly.count + 1})
)

# Today's use of an assistant with a daily quota (docs/design.md, "Quotas").
OVER_TOKENS = Statement(
    select(DailyUsage.tokens).where(
        DailyUsage.assistant_id == bindparam("p_assistant_id"),
        DailyUsage.day == bindparam("p_day"),
        DailyUsage.tokens >= bindparam("p_tokens_cap", type_=Integer),
    )
)
DAY_ROW = {
    "assistant_id": bindparam("p_assistant_id", type_=Integer),
    "day": bindparam("p_day", type_=UTCDateTime),
}


def count_session(insert_: Any) -> Statement:
    """One more session today, only while below the cap: the conflicting row is locked and the
    condition checked on its latest value, so concurrent starts never pass the cap together."""
    statement = insert_(DailyUsage).values({**DAY_ROW, "sessions": 1, "tokens": 0})
    return Statement(
        statement.on_conflict_do_update(
            index_elements=["assistant_id", "day"],
            set_={"sessions": DailyUsage.sessions + 1},
            where=DailyUsage.sessions < bindparam("p_sessions_cap", type_=Integer),
        ).returning(DailyUsage.sessions)
    )


def count_tokens(insert_: Any) -> Statement:
    tokens = bindparam("p_tokens_in", type_=Integer) + bindparam("p_tokens_out", type_=Integer)
    statement = insert_(DailyUsage).values({**DAY_ROW, "sessions": 0, "tokens": tokens})
    return Statement(
        statement.on_conflict_do_update(
            index_elements=["assistant_id", "day"], set_={"tokens": DailyUsage.tokens + statement.excluded.tokens}
        )
    )


COUNT_SESSION_PG = count_session(pg_insert)
COUNT_SESSION_SQLITE = count_session(sqlite_insert)
COUNT_TOKENS_PG = count_tokens(pg_insert)
COUNT_TOKENS_SQLITE = count_tokens(sqlite_insert)
