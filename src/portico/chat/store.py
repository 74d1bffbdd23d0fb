"""The guest path's one way to the database: every statement of session start, resume, end,
messages, replies, the OpenAI-compatible endpoint and refusal counts.

Services call these functions with plain values and get plain values back (the gate's facts,
chat/records.py); no SQLAlchemy object or driver type leaves this module. The statements are
in chat/statements.py.

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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from portico.chat import statements as sql
from portico.chat._driver import Statement, Tx
from portico.chat.records import (
    AssistantFacts,
    DailyCaps,
    DailyLimitReached,
    GuestSave,
    LinkFacts,
    MessageRecord,
    OpenSession,
    Rated,
    Reply,
    SessionRecord,
)
from portico.db import writer_lock
from portico.metrics.quotas import day_of
from portico.metrics.rollup import hour_of
from portico.models import Assistant, PrivateLink
from portico.vocabulary import EndReason, Role


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
            row = await tx.one(sql.BY_KEY, {"p_digest": key_digest})
        return None if row is None else (sql.link_facts(row), sql.assistant_facts(row))

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
        """Insert an anonymous session (no link); its id. Raises DailyLimitReached (see below)."""
        params = sql.session_params(assistant_id, version, None, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=False)
        else:
            async with self._write(one_on_sqlite=True) as tx:
                row = await tx.one(sql.INSERT_SESSION, params)
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
        (or the link was deleted, paused or expired at `now`) by the time the statement ran. Raises DailyLimitReached (below).
        """
        params = sql.session_params(assistant_id, version, link_id, channel, token_digest, now)
        if daily.sessions or daily.tokens:
            row = await self._start_within_day(params, daily, link=True)
            return None if row is None else (row["id"], row["sessions_used"])
        async with self._write() as tx:
            if self._postgres:
                row = await tx.one(sql.INSERT_SESSION_TAKING_USE, params)
                return None if row is None else (row["id"], row["sessions_used"])
            taken = await tx.one(sql.TAKE_USE, params)
            if taken is None:
                return None
            row = await tx.one(sql.INSERT_SESSION, params)
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
            if daily.tokens and await tx.one(sql.OVER_TOKENS, params) is not None:
                raise DailyLimitReached()
            if not link:
                row = await tx.one(sql.INSERT_SESSION, params)
            elif self._postgres:
                row = await tx.one(sql.INSERT_SESSION_TAKING_USE, params)
            elif (taken := await tx.one(sql.TAKE_USE, params)) is None:
                row = None
            else:
                inserted = await tx.one(sql.INSERT_SESSION, params)
                row = None if inserted is None else {**inserted, "sessions_used": taken["sessions_used"]}
            if row is None:
                return None
            count = sql.COUNT_SESSION_PG if self._postgres else sql.COUNT_SESSION_SQLITE
            if daily.sessions and await tx.one(count, params) is None:
                raise DailyLimitReached()  # rolls back the session and the link's use
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
        async with self._write(one_on_sqlite=True) as tx:
            row = await tx.one(sql.END, {"p_session_id": session_id, "p_at": at, "p_reason": reason.value})
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
            rows = await tx.all(sql.HISTORY, {"p_session_id": session_id, "p_limit": turns})
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
        save, touch = sql.SAVE_MESSAGE, sql.TOUCH_SESSION
        if tokens_per_day:
            params.update(p_assistant_id=assistant_id, p_day=day_of(now), p_tokens_cap=tokens_per_day)
            save, touch = sql.SAVE_MESSAGE_WITHIN_DAY, sql.TOUCH_SESSION_WITHIN_DAY
        async with self._write() as tx:
            if self._postgres:
                saved = await tx.one(save, params) is not None
            else:
                saved = await tx.one(touch, params) is not None
                if saved:
                    await tx.all(sql.INSERT_MESSAGE, params)
        if saved:
            return GuestSave.SAVED
        # Refused: say why, from the session as it now is (only refusals pay for this read).
        async with self._read() as tx:
            row = await tx.one(sql.GUEST_MESSAGES, params)
        if row is None or row["ended_at"] is not None:
            return GuestSave.ENDED
        if cap and row["guest_messages"] >= cap:
            return GuestSave.MESSAGE_LIMIT
        return GuestSave.DAILY_LIMIT if tokens_per_day else GuestSave.ENDED

    async def start_reply(
        self, session_id: int, *, content: str | None, first_token_ms: int | None, now: datetime
    ) -> int:
        """Save a reply still being streamed, as far as it got; its id (see `save_reply_progress`)."""
        params = {"p_session_id": session_id, "p_content": content, "p_first_token_ms": first_token_ms, "p_now": now}
        async with self._write(one_on_sqlite=True) as tx:
            row = await tx.one(sql.START_REPLY, params)
        assert row is not None
        return int(row["id"])

    async def save_reply_progress(self, message_id: int, *, content: str | None) -> None:
        async with self._write(one_on_sqlite=True) as tx:
            await tx.all(sql.SAVE_PROGRESS, {"p_message_id": message_id, "p_content": content})

    async def save_reply(
        self, reply: Reply, *, now: datetime, count_tokens_of: int | None = None, message_id: int | None = None
    ) -> int:
        """Save a reply and add it to its session's totals; the reply's id. `message_id` is the
        row `start_reply` made for it, if any. With `count_tokens_of` (an assistant with a
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
        async with self._write(statements=1 if count_tokens_of is None else 2) as tx:
            if self._postgres:
                row = await tx.one(sql.SAVE_REPLY if message_id is None else sql.FINISH_REPLY, params)
            else:
                await tx.all(sql.COUNT_REPLY, params)
                row = await tx.one(sql.INSERT_REPLY if message_id is None else sql.FINISH_REPLY_ALONE, params)
            if count_tokens_of is not None:
                await tx.all(sql.COUNT_TOKENS_PG if self._postgres else sql.COUNT_TOKENS_SQLITE, params)
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
    ) -> Rated:
        """Rate a finished reply of this session (a second rating replaces the first)."""
        params = {
            "p_session_id": session_id,
            "p_message_id": message_id,
            "p_rating": rating,
            "p_reason": reason,
            "p_comment": comment,
            "p_now": now,
        }
        async with self._write(one_on_sqlite=True) as tx:
            rated = await tx.one(sql.RATE, params)
        if rated is not None:
            return Rated.RATED
        # Refused: say why (only refusals pay for this read).
        async with self._read() as tx:
            row = await tx.one(sql.MESSAGE_KIND, params)
        if row is None:
            return Rated.NOT_FOUND
        return Rated.NOT_A_REPLY if row["role"] != Role.ASSISTANT else Rated.IN_PROGRESS

    async def transcript(self, session_id: int) -> list[MessageRecord]:
        async with self._read() as tx:
            rows = await tx.all(sql.TRANSCRIPT, {"p_session_id": session_id})
        return [MessageRecord(**row) for row in rows]

    # -- refusals and cut-offs --------------------------------------------------------------

    async def count_refusal(self, *, assistant_id: int, code: str, now: datetime) -> None:
        """One refusal in the hour's count, by code only: nothing about who was refused."""
        statement = sql.COUNT_REFUSAL_PG if self._postgres else sql.COUNT_REFUSAL_SQLITE
        async with self._write(one_on_sqlite=True) as tx:
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
    async def _write(self, *, statements: int = 1, one_on_sqlite: bool = False) -> AsyncIterator[Tx]:
        """`statements`: how many this method runs on PostgreSQL; `one_on_sqlite`: it runs one on
        SQLite too (several methods run two there, where PostgreSQL takes one WITH statement)."""
        async with writer_lock(self._engine), self._engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            tx = Tx(driver, self._dialect)
            # One statement is its own transaction on both (SQLite's autocommit takes its write
            # lock for the statement, behind this process's queue): no BEGIN and COMMIT hand-offs.
            if statements == 1 and (self._postgres or one_on_sqlite):
                yield tx
            else:
                async with tx.transaction(immediate=True):
                    yield tx
