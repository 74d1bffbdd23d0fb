"""Logs search: which sessions have a message with the searched words (docs/design.md, "Logs and Metrics").

PostgreSQL keeps one search vector per session in the side table `session_search` (migration
0014: triggers add a guest message's words when it is saved and a reply's when it is finished; a
GIN index finds a word's sessions, and the table's (assistant, started_at) index walks them newest
first). SQLite keeps an FTS5 table of the messages (migration 0004), which this reads newest
first, a batch at a time, until the page's sessions are known.

Either way a session matches when one of its stored messages holds every word searched.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, column, exists, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from portico.kit.chores import run_every, this_instance_runs
from portico.models import ChatSession, Message

log = logging.getLogger("portico.search")

session_search = table(
    "session_search", column("session_id"), column("assistant_id"), column("started_at"), column("search")
)
# Sessions the backfill adds per transaction.
BACKFILL_BATCH = 2_000
BACKFILL_SECONDS = 60
# SQLite: matching messages read per batch, newest first (the batch doubles each time).
FIRST_BATCH = 500
# Past this many sessions found, the rest are matched all at once (one bound parameter each before).
MOST_SESSIONS = 10_000


def _query(q: str) -> ColumnElement[Any]:
    return func.plainto_tsquery("simple", q)


def postgres_match(assistant_id: int, q: str) -> ColumnElement[bool]:
    """Sessions whose vector holds every word; with several words, one message must hold them all."""
    found = select(session_search.c.session_id).where(
        session_search.c.assistant_id == assistant_id, session_search.c.search.op("@@")(_query(q))
    )
    condition: ColumnElement[bool] = ChatSession.id.in_(found)
    if len(q.split()) > 1:
        in_one_message = exists().where(
            Message.session_id == ChatSession.id,
            func.to_tsvector("simple", func.coalesce(Message.content, "")).op("@@")(_query(q)),
        )
        condition = condition & in_one_message
    return condition


def fts_phrase(q: str) -> str:
    """FTS5's query for every word of `q` (each quoted: no operators from the guest's text)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in q.split())


def sqlite_match(q: str) -> ColumnElement[bool]:
    """Sessions with a message matching every word, through the FTS5 table (all matches at once)."""
    rowids = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :fts").bindparams(fts=fts_phrase(q))
    return ChatSession.id.in_(select(Message.session_id).where(Message.id.in_(rowids)))


async def sqlite_newest(db: AsyncSession, q: str, *, after_id: int | None, size: int) -> list[tuple[int, int, Any]]:
    """The next `size` matching messages, newest first (below message id `after_id`): (id, session, created_at)."""
    below = "AND messages_fts.rowid < :after" if after_id is not None else ""
    statement = text(
        "SELECT m.id, m.session_id, m.created_at FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
        f"WHERE messages_fts MATCH :fts {below} ORDER BY messages_fts.rowid DESC LIMIT :size"
    ).columns(Message.id, Message.session_id, Message.created_at)
    params: dict[str, Any] = {"fts": fts_phrase(q), "size": size}
    if after_id is not None:
        params["after"] = after_id
    return [(row[0], row[1], row[2]) for row in (await db.execute(statement, params)).all()]


BACKFILL = """
WITH batch AS (
    SELECT id, assistant_id, started_at FROM chat_sessions
    WHERE id < (SELECT below FROM session_search_backfill)
    ORDER BY id DESC LIMIT :batch
), vectors AS (
    SELECT b.id, b.assistant_id, b.started_at, strip(to_tsvector('simple', string_agg(m.content, ' '))) AS search
    FROM batch b JOIN messages m ON m.session_id = b.id
    WHERE m.content IS NOT NULL AND (m.role <> 'assistant' OR m.duration_ms IS NOT NULL)
    GROUP BY b.id, b.assistant_id, b.started_at
), saved AS (
    INSERT INTO session_search AS s (session_id, assistant_id, started_at, search)
    SELECT id, assistant_id, started_at, search FROM vectors
    ON CONFLICT (session_id) DO UPDATE SET search = s.search || excluded.search
)
UPDATE session_search_backfill SET below = coalesce((SELECT min(id) FROM batch), 0) RETURNING below
"""


async def backfill_batch(conn: AsyncConnection | AsyncSession, *, batch: int | None = None) -> int | None:
    """One batch of the backfill; the sessions left (ids below the returned mark), None when done."""
    below = (await conn.execute(text(BACKFILL), {"batch": batch or BACKFILL_BATCH})).scalar()
    if below == 0:
        await conn.execute(text("DELETE FROM session_search_backfill"))
        # The planner's word counts for the whole table at once, rather than when autovacuum gets to it.
        await conn.execute(text("ANALYZE session_search"))
        return None
    return below


async def backfill_now(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """The chore: what the backfill has left, done here a batch per transaction by one instance."""
    batches = 0
    while True:
        async with sessionmaker() as db, db.begin():
            if db.get_bind().dialect.name != "postgresql" or not await this_instance_runs(db, "search-backfill"):
                return batches
            if await db.scalar(text("SELECT count(*) FROM session_search_backfill")) == 0:
                return batches
            below = await backfill_batch(db)
        batches += 1
        if below is None:
            log.info("search backfill done (%d batches)", batches)
            return batches


async def backfill_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float = BACKFILL_SECONDS) -> None:
    await run_every("search-backfill", every, lambda: backfill_now(sessionmaker))
