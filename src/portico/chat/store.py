"""The guest path's one way to the database: every statement of session start, resume, end,
messages, replies, the OpenAI-compatible endpoint and refusal counts.

Services call these functions with plain values and get plain values back (chat/records.py); no
SQLAlchemy object or driver type leaves this module. A write the store will not make (no use
left on a link, a quota reached, a session ended, a message that cannot be rated) is raised as the
domain error the guest is answered with, having saved nothing. The statements are in
chat/statements.py.

**Each public method is one transaction**, committed when it returns, rolled back if it raises,
the same on SQLite and PostgreSQL. A method says which of three ways it goes to the database:
- `_read()`: reads, each statement on its own (in WAL mode a reader never waits for a writer);
- `_write_one(statement)`: one statement, its own transaction on both databases, with no BEGIN
  and COMMIT round trips;
- `_transaction()`: several statements, saved together or not at all (BEGIN ... COMMIT);
- `_at_once(plan)`: the same on SQLite, the statements run in one hand-off to aiosqlite's
  thread (a plain function of a `ThreadTx`) instead of one each, BEGIN and COMMIT included.
Where two writes must be saved together and PostgreSQL can do them in one statement (a
data-modifying WITH: taking a link's use and inserting the session, a message and its session's
counters), PostgreSQL runs that one statement (`_write_one`) and SQLite, which has no UPDATE
inside WITH, runs the two `_at_once()`.

SQLite: every write takes this process's writer queue (`db.writer_lock`, a FIFO) first, so
writers wait in order instead of polling SQLite's busy handler (the tail of session starts,
docs/benchmarks.md); one statement alone is its own transaction (autocommit), several take the
write lock at BEGIN IMMEDIATE.

Speed: the statements are built and compiled once per dialect and run on the driver connection
beneath SQLAlchemy's pooled one (chat/_driver.py says why).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from portico.access.gate import GateRefusal, Refused, link_refusal
from portico.chat import statements as sql
from portico.chat._driver import SessionTx, Statement, ThreadTx, Tx
from portico.chat.growing import GrowingReplies, StartedReply
from portico.chat.records import (
    AssistantFacts,
    DailyCaps,
    LinkFacts,
    MessageRecord,
    NotAReply,
    OpenSession,
    Reply,
    ReplyInProgress,
    ReplyNotFound,
    SessionEnded,
    SessionRecord,
)
from portico.db import writer_lock
from portico.metrics.quotas import day_of, seconds_to_next_day
from portico.metrics.rollup import hour_of
from portico.models import Assistant, ChatSession, PrivateLink
from portico.models.base import UTCDateTime
from portico.vocabulary import EndReason, Refusal, Role

T = TypeVar("T")


def daily_limit(assistant_id: int, now: datetime) -> GateRefusal:
    """The refusal of an assistant whose day is used up: ask again after UTC midnight."""
    return GateRefusal(Refusal.DAILY_LIMIT_REACHED, assistant_id, retry_after=seconds_to_next_day(now))


class GuestStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._postgres = engine.dialect.name == "postgresql"
        # How SQLite stores a time (a string), for the rows a JSON array carries (save_growing).
        self._sqlite_time: Callable[[datetime], Any] = UTCDateTime().dialect_impl(self._dialect).bind_processor(
            self._dialect
        ) or (lambda value: value)
        # The replies this process is streaming, saved together once a tick (chat/growing.py).
        self.growing = GrowingReplies(self.save_growing)
        # Configurations by content digest: a version never changes, and equal digests mean equal
        # configurations, so any instance may keep them in memory and skip the knowledge text.
        self._configs: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- the gate's facts -------------------------------------------------------------------

    async def facts_by_key(self, key_digest: str) -> tuple[LinkFacts, AssistantFacts | None] | None:
        """A private link by its key's digest, with its assistant and published version."""
        async with self._read() as tx:
            row = await tx.one(sql.BY_KEY, {"p_digest": key_digest})
        return None if row is None else (sql.link_facts(row), sql.assistant_facts(row))

    async def retired_key(self, key_digest: str) -> int | None:
        """The assistant whose link had this key before it was reissued, if any."""
        async with self._read() as tx:
            row = await tx.one(sql.RETIRED_KEY, {"p_digest": key_digest})
        return None if row is None else int(row["assistant_id"])

    async def facts_by_public_id(self, public_id: str) -> AssistantFacts | None:
        async with self._read() as tx:
            row = await tx.one(sql.BY_PUBLIC_ID, {"p_public_id": public_id})
        return None if row is None else sql.assistant_facts(row)

    async def facts_by_widget_id(self, widget_id: str) -> AssistantFacts | None:
        async with self._read() as tx:
            row = await tx.one(sql.BY_WIDGET_ID, {"p_widget_id": widget_id})
        return None if row is None else sql.assistant_facts(row)

    async def link(self, link_id: int) -> LinkFacts | None:
        async with self._read() as tx:
            row = await tx.one(sql.LINK_BY_ID, {"p_link_id": link_id})
        return None if row is None else sql.link_facts(row)

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
        """Insert an anonymous session (no link); its id. Raises `Refused` by a daily quota (below)."""
        params = sql.session_params(assistant_id, version, None, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=False)
        else:
            row = await self._write_one(sql.INSERT_SESSION, params)
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
    ) -> tuple[int, int]:
        """Take one use of a link still active with one left, and insert its session, together:
        the session's id and the link's uses now taken.

        Raises `Refused` when no use was left (or the link was deleted, paused or expired at
        `now`) by the time the statement ran, saying which, or by a daily quota (below).
        """
        params = sql.session_params(assistant_id, version, link_id, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=True)
        elif self._postgres:
            row = await self._write_one(sql.INSERT_SESSION_TAKING_USE, params)
        else:
            row = await self._at_once(lambda tx: _take_use_sqlite(tx, params))
        if row is None:
            # Another session took the last use, or the owner deleted, paused or ended the link,
            # since the gate looked: say which (only refusals pay for this read).
            raise Refused(link_refusal(await self.link(link_id), assistant_id=assistant_id, now=now))
        return row["id"], row["sessions_used"]

    async def _insert_taking_use(self, tx: Tx, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Inside a transaction: the link's use taken and the session inserted (None: no use left)."""
        if self._postgres:
            return await tx.one(sql.INSERT_SESSION_TAKING_USE, params)
        taken = await tx.one(sql.TAKE_USE, params)
        if taken is None:
            return None
        inserted = await tx.one(sql.INSERT_SESSION, params)
        assert inserted is not None
        return {**inserted, "sessions_used": taken["sessions_used"]}

    async def _start_within_day(self, params: dict[str, Any], daily: DailyCaps, *, link: bool) -> dict[str, Any] | None:
        """A start of an assistant with a daily quota, in one transaction: refused when today's
        tokens are used up; else the link's use is taken and the session inserted as without a
        quota, then today's session count is raised only while below the cap. When it is not, the
        whole start rolls back, the link's use with it, so N admits exactly N."""
        params = {
            **params,
            "p_day": day_of(params["p_now"]),
            "p_sessions_cap": daily.sessions,
            "p_tokens_cap": daily.tokens,
        }
        async with self._transaction() as tx:
            if daily.tokens and await tx.one(sql.OVER_TOKENS, params) is not None:
                raise Refused(daily_limit(params["p_assistant_id"], params["p_now"]))
            if link:
                row = await self._insert_taking_use(tx, params)
            else:
                row = await tx.one(sql.INSERT_SESSION, params)
            if row is None:
                return None
            count = sql.COUNT_SESSION_PG if self._postgres else sql.COUNT_SESSION_SQLITE
            if daily.sessions and await tx.one(count, params) is None:
                # Rolls back the session and the link's use.
                raise Refused(daily_limit(params["p_assistant_id"], params["p_now"]))
        return row

    async def open_session(self, session_id: int) -> OpenSession | None:
        async with self._read() as tx:
            row = await tx.one(sql.OPEN, {"p_session_id": session_id})
        if row is None:
            return None
        session = SessionRecord(**{name: row[f"session_{name}"] for name in sql.SESSION_RECORD_FIELDS})
        link = sql.link_facts(row) if row["link_id"] is not None else None
        return OpenSession(
            session,
            sql.assistant_facts(row),
            link,
            row["version_settings"],
            row["version_greeting"] or "",
            row["version_digest"],
            tuple(row["version_starters"] or ()),
        )

    async def end_session(self, session_id: int, *, reason: EndReason, at: datetime) -> bool:
        """End a session still open; False when it had already ended."""
        row = await self._write_one(sql.END, {"p_session_id": session_id, "p_at": at, "p_reason": reason.value})
        return row is not None

    # -- messages ---------------------------------------------------------------------------

    async def version_config(self, *, assistant_id: int, number: int, digest: str) -> dict[str, Any]:
        """A published version's configuration (cached by its digest), with the digest in it."""
        config = self._configs.get(digest)
        if config is None:
            async with self._read() as tx:
                row = await tx.one(sql.CONFIG, {"p_assistant_id": assistant_id, "p_number": number})
            assert row is not None
            config = self._configs[digest] = {**row["config"], "digest": digest}
            while len(self._configs) > 64:
                self._configs.popitem(last=False)
        self._configs.move_to_end(digest)
        return config

    async def history(self, session_id: int, *, turns: int) -> list[tuple[str, str]]:
        """The session's last `turns` stored messages, oldest first, as (role, content)."""
        async with self._read() as tx:
            return await _history(tx, session_id, turns)

    async def save_guest_message(
        self,
        session_id: int,
        *,
        content: str | None,
        now: datetime,
        assistant_id: int,
        cap: int = 0,
        tokens_per_day: int = 0,
        audio_ms: int | None = None,
    ) -> None:
        """Save a guest's message and count it, only while the session is open, has had fewer
        than `cap` guest messages (0 = no cap) and, with `tokens_per_day`, while the assistant's
        tokens today are below it: the same one condition, with or without a cap.

        Raises `SessionEnded`, or `Refused` by the message or the daily quota.
        """
        params = {"p_session_id": session_id, "p_content": content, "p_now": now, "p_cap": cap, "p_audio_ms": audio_ms}
        save, touch = sql.SAVE_MESSAGE, sql.TOUCH_SESSION
        if tokens_per_day:
            params.update(p_assistant_id=assistant_id, p_day=day_of(now), p_tokens_cap=tokens_per_day)
            save, touch = sql.SAVE_MESSAGE_WITHIN_DAY, sql.TOUCH_SESSION_WITHIN_DAY
        if self._postgres:
            saved = await self._write_one(save, params) is not None
        else:

            def touch_and_insert(tx: ThreadTx) -> bool:
                if tx.one(touch, params) is None:
                    return False
                tx.all(sql.INSERT_MESSAGE, params)
                return True

            saved = await self._at_once(touch_and_insert)
        if saved:
            return
        # Refused: say why, from the session as it now is (only refusals pay for this read).
        async with self._read() as tx:
            row = await tx.one(sql.GUEST_MESSAGES, params)
        if row is None or row["ended_at"] is not None:
            raise SessionEnded()  # ended since it was opened
        if cap and row["guest_messages"] >= cap:
            raise Refused(GateRefusal(Refusal.MESSAGE_LIMIT_REACHED, assistant_id))
        if tokens_per_day:
            raise Refused(daily_limit(assistant_id, now))
        raise SessionEnded()

    async def save_growing(self, started: list[StartedReply], grown: list[tuple[int, str | None]]) -> list[int]:
        """Save replies still streaming, all at once (chat/growing.py): insert `started` in
        progress and update the text of `grown` (message id, text so far) where still in progress;
        the ids of `started`, in order. PostgreSQL: one statement; SQLite: one transaction."""
        if self._postgres:
            params = {
                "p_ids": [message_id for message_id, _ in grown],
                "p_contents": [content for _, content in grown],
                "p_sessions": [reply.session_id for reply in started],
                "p_texts": [reply.content for reply in started],
                "p_created": [reply.created_at for reply in started],
                "p_first": [reply.first_token_ms for reply in started],
            }
            async with writer_lock(self._engine), self._engine.connect() as conn:
                rows = await Tx(await _driver(conn), self._dialect).all(sql.SAVE_GROWING_PG, params)
        else:
            values = [
                (reply.session_id, reply.content, self._sqlite_time(reply.created_at), reply.first_token_ms)
                for reply in started
            ]

            def grow_and_start(tx: ThreadTx) -> list[dict[str, Any]]:
                if grown:
                    tx.all(sql.GROW_SQLITE, {"p_grown": json.dumps(grown)})
                return tx.all(sql.START_GROWING_SQLITE, {"p_started": json.dumps(values)}) if started else []

            rows = await self._at_once(grow_and_start)
        # Ids follow the order the rows were given in (the statement inserts them in that order).
        rows.sort(key=lambda row: row["id"])
        assert [row["session_id"] for row in rows] == [reply.session_id for reply in started]
        return [row["id"] for row in rows]

    async def save_reply(
        self, reply: Reply, *, now: datetime, count_tokens_of: int | None = None, message_id: int | None = None
    ) -> int:
        """Save a reply and add it to its session's totals; the reply's id. `message_id` is the
        row `save_growing` made for it, if any. With `count_tokens_of` (an assistant with a
        tokens_per_day quota), its tokens are added to the assistant's day in the same transaction."""
        params = {
            "p_message_id": message_id,
            "p_session_id": reply.session_id,
            "p_content": reply.content,
            "p_now": now,
            "p_first_token_ms": reply.first_token_ms,
            "p_duration_ms": reply.duration_ms,
            "p_tokens_in": reply.tokens_in,
            "p_tokens_out": reply.tokens_out,
            "p_error_code": reply.error_code,
            "p_sources": list(reply.sources),
            "p_answered": reply.answered,
        }
        if count_tokens_of is not None:
            params.update(p_assistant_id=count_tokens_of, p_day=day_of(now))
        finishing = message_id is not None
        if not self._postgres:

            def save(tx: ThreadTx) -> dict[str, Any] | None:
                # The reply saved (or its row, saved as it grew, finished) and added to its session's totals.
                tx.all(sql.COUNT_REPLY, params)
                row = tx.one(sql.FINISH_REPLY_ALONE if finishing else sql.INSERT_REPLY, params)
                if count_tokens_of is not None:
                    tx.all(sql.COUNT_TOKENS_SQLITE, params)
                return row

            row = await self._at_once(save)
        elif count_tokens_of is None:
            row = await self._write_one(sql.FINISH_REPLY if finishing else sql.SAVE_REPLY, params)
        else:
            async with self._transaction() as tx:
                row = await tx.one(sql.FINISH_REPLY if finishing else sql.SAVE_REPLY, params)
                await tx.all(sql.COUNT_TOKENS_PG, params)
        assert row is not None
        return int(row["id"])

    async def rate_reply(
        self,
        *,
        session_id: int,
        message_id: int,
        rating: str,
        reason: str | None,
        comment: str | None,
        now: datetime,
    ) -> None:
        """Rate a finished reply of this session (a second rating replaces the first). Raises
        `ReplyNotFound`, `NotAReply` or `ReplyInProgress`."""
        params = _rating(session_id, message_id, rating, reason, comment, now)
        if await self._write_one(sql.RATE, params) is None:
            async with self._read() as tx:
                raise await _not_rated(tx, params)

    async def transcript(self, session_id: int) -> list[MessageRecord]:
        async with self._read() as tx:
            rows = await tx.all(sql.TRANSCRIPT, {"p_session_id": session_id})
        return [MessageRecord(**row) for row in rows]

    async def schema_version(self) -> str | None:
        """The migration the database is at (/readyz): a read, so on SQLite it never waits for a writer."""
        async with self._read() as tx:
            row = await tx.one(sql.SCHEMA_VERSION, {})
        return None if row is None else row["version_num"]

    # -- refusals and cut-offs --------------------------------------------------------------

    async def count_refusal(self, *, assistant_id: int, code: str, now: datetime) -> None:
        """One refusal in the hour's count, by code only: nothing about who was refused."""
        statement = sql.COUNT_REFUSAL_PG if self._postgres else sql.COUNT_REFUSAL_SQLITE
        await self._write_one(statement, {"p_assistant_id": assistant_id, "p_hour": hour_of(now), "p_code": code})

    async def stopped(
        self, *, assistant_ids: set[int], link_ids: set[int], link_session_ids: set[int] | None = None
    ) -> tuple[dict[int, tuple[str, str, datetime | None]], set[int], set[int]]:
        """These assistants' (status, share mode, deleted_at), which of these links are revoked, and
        which of these sessions (on private links) ended because their link was reissued."""
        # Asked a few times a second while streams run (cutoff.py), with ids that change: built
        # per call, the ids written into the SQL (integers only).
        find_assistants = select(Assistant.id, Assistant.status, Assistant.share_mode, Assistant.deleted_at).where(
            Assistant.id.in_(sorted(int(i) for i in assistant_ids))
        )
        find_links = select(PrivateLink.id).where(
            PrivateLink.id.in_(sorted(int(i) for i in link_ids)), PrivateLink.revoked_at.is_not(None)
        )
        # Two reads, each as the database is when it runs: the assistants' states and the links'
        # revocations are independent facts, and the next call reads both again.
        # A reissued link is not revoked: its old key's sessions are known by how they ended.
        find_reissued = select(ChatSession.id).where(
            ChatSession.id.in_(sorted(int(i) for i in link_session_ids or ())),
            ChatSession.end_reason == EndReason.LINK_REISSUED.value,
        )
        async with self._read() as tx:
            assistants = await tx.all(Statement(find_assistants, literal=True), {})
            links = await tx.all(Statement(find_links, literal=True), {}) if link_ids else []
            reissued = await tx.all(Statement(find_reissued, literal=True), {}) if link_session_ids else []
        stopped = {row["id"]: (row["status"], row["share_mode"], row["deleted_at"]) for row in assistants}
        return stopped, {row["id"] for row in links}, {row["id"] for row in reissued}

    # -- transactions -----------------------------------------------------------------------

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        async with self._engine.connect() as conn:
            yield Tx(await _driver(conn), self._dialect)

    async def _write_one(self, statement: Statement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """One statement, its own transaction: on PostgreSQL as on SQLite (whose autocommit takes
        the write lock for the statement, behind this process's queue), no BEGIN and COMMIT."""
        async with writer_lock(self._engine), self._engine.connect() as conn:
            return await Tx(await _driver(conn), self._dialect).one(statement, params)

    async def _at_once(self, plan: Callable[[ThreadTx], T]) -> T:
        """SQLite: several statements saved together or not at all, in one hand-off to its
        thread (`Tx.at_once`); what `_transaction()` does in one hand-off per statement."""
        async with writer_lock(self._engine), self._engine.connect() as conn:
            return await Tx(await _driver(conn), self._dialect).at_once(plan)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        """Several statements, saved together when the block ends or not at all if it raises."""
        async with writer_lock(self._engine), self._engine.connect() as conn:
            tx = Tx(await _driver(conn), self._dialect)
            async with tx.transaction():
                yield tx


def _take_use_sqlite(tx: ThreadTx, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """SQLite's `INSERT_SESSION_TAKING_USE`: the link's use taken and the session inserted (None: no use left)."""
    taken = tx.one(sql.TAKE_USE, params)
    if taken is None:
        return None
    inserted = tx.one(sql.INSERT_SESSION, params)
    assert inserted is not None
    return {**inserted, "sessions_used": taken["sessions_used"]}


async def _driver(conn: AsyncConnection) -> Any:
    return (await conn.get_raw_connection()).driver_connection


class PreviewStore:
    """The guest store's history and rating, for the owner's preview: the same statements and
    refusals, run in the owner's request on its session, inside the transaction the request owns
    (a write of the store's own beside it would wait on SQLite for the request's write lock)."""

    def __init__(self, db: AsyncSession) -> None:
        self._tx = SessionTx(db)

    async def history(self, session_id: int, *, turns: int) -> list[tuple[str, str]]:
        return await _history(self._tx, session_id, turns)

    async def rate_reply(
        self,
        *,
        session_id: int,
        message_id: int,
        rating: str,
        reason: str | None,
        comment: str | None,
        now: datetime,
    ) -> None:
        params = _rating(session_id, message_id, rating, reason, comment, now)
        if await self._tx.one(sql.RATE, params) is None:
            raise await _not_rated(self._tx, params)


async def _history(tx: Tx | SessionTx, session_id: int, turns: int) -> list[tuple[str, str]]:
    rows = await tx.all(sql.HISTORY, {"p_session_id": session_id, "p_limit": turns})
    return [(row["role"], row["content"]) for row in reversed(rows)]


def _rating(
    session_id: int, message_id: int, rating: str, reason: str | None, comment: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "p_session_id": session_id,
        "p_message_id": message_id,
        "p_rating": rating,
        "p_reason": reason,
        "p_comment": comment,
        "p_now": now,
    }


async def _not_rated(tx: Tx | SessionTx, params: Mapping[str, Any]) -> Exception:
    """Why a rating found no reply to rate (only refusals pay for this read)."""
    row = await tx.one(sql.MESSAGE_KIND, params)
    if row is None:
        return ReplyNotFound()
    return NotAReply() if row["role"] != Role.ASSISTANT else ReplyInProgress()
