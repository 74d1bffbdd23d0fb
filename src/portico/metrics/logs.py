"""Logs: every session, newest first, filtered, paged by keyset (never OFFSET), and exported."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.errors import InvalidRequest, NotFound
from portico.metrics import search
from portico.models import ChatSession, Message, PrivateLink
from portico.vocabulary import Channel, EndReason, Rating

CHANNELS = tuple(channel.value for channel in Channel)
# Not an end reason: the filter's word for sessions still running.
OPEN = "open"
END_REASONS = (*(reason.value for reason in EndReason), OPEN)
RATINGS = tuple(rating.value for rating in Rating)


@dataclass(frozen=True)
class LogFilters:
    user: str | None = None  # a private link's id, "anonymous" or "preview"
    channel: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    end_reason: str | None = None  # or "open" for sessions still running
    q: str | None = None
    rating: str | None = None  # sessions with a reply rated so ("down": rated down)

    def __post_init__(self) -> None:
        if self.channel is not None and self.channel not in CHANNELS:
            raise InvalidRequest(f"channel must be one of {', '.join(CHANNELS)}.", field="channel")
        if self.end_reason is not None and self.end_reason not in END_REASONS:
            raise InvalidRequest(f"end_reason must be one of {', '.join(END_REASONS)}.", field="end_reason")
        if self.user is not None and self.user not in ("anonymous", Channel.PREVIEW) and not self.user.isdigit():
            raise InvalidRequest("user must be a private link's id, 'anonymous' or 'preview'.", field="user")
        if self.start and self.end and self.start >= self.end:
            raise InvalidRequest("The start of the date range must be before its end.", field="range")
        if self.rating is not None and self.rating not in RATINGS:
            raise InvalidRequest(f"rating must be one of {', '.join(RATINGS)}.", field="rating")
        if self.q is not None and len(self.q) > 200:
            raise InvalidRequest("Search for at most 200 characters.", field="q")


@dataclass(frozen=True)
class Rated:
    rating: str
    reason: str | None
    comment: str | None

    def __str__(self) -> str:
        """As an export's cell shows it: `down (wrong): It says 9 but it is 10`."""
        return (
            self.rating + (f" ({self.reason})" if self.reason else "") + (f": {self.comment}" if self.comment else "")
        )


@dataclass(frozen=True)
class SessionRow:
    id: int
    started_at: datetime
    ended_at: datetime | None
    last_activity_at: datetime
    user: str
    link_id: int | None
    channel: str
    messages: int
    tokens_in: int
    tokens_out: int
    end_reason: str | None
    version: int
    # The guest's ratings of the session's replies, in order.
    ratings: tuple[Rated, ...] = ()

    @property
    def rated_up(self) -> int:
        return sum(rated.rating == Rating.UP for rated in self.ratings)

    @property
    def rated_down(self) -> int:
        return sum(rated.rating == Rating.DOWN for rated in self.ratings)

    @property
    def duration_seconds(self) -> int:
        return round(((self.ended_at or self.last_activity_at) - self.started_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "user": self.user,
            "link_id": self.link_id,
            "channel": self.channel,
            "duration_seconds": self.duration_seconds,
            "messages": self.messages,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "end_reason": self.end_reason,
            "version": self.version,
            "rated_up": self.rated_up,
            "rated_down": self.rated_down,
        }


def user_label(*, channel: str, link_name: str | None, link_revoked: bool) -> str:
    if channel == Channel.PREVIEW:
        return "Owner preview"
    if link_name is None:
        return "Anonymous"
    return f"{link_name} (deleted)" if link_revoked else link_name


# A session with its private link's name and revocation time (None when it came in without one).
SessionQuery = Select[ChatSession, str, datetime | None]


def searching(filters: LogFilters) -> bool:
    return bool(filters.q and filters.q.split())


async def _query(db: AsyncSession, assistant_id: int, filters: LogFilters) -> SessionQuery:
    """The sessions that match the filters; SQLite's text search is left to `_fts_page`."""
    query = (
        select(ChatSession, PrivateLink.name.label("link_name"), PrivateLink.revoked_at.label("link_revoked_at"))
        .outerjoin(PrivateLink, PrivateLink.id == ChatSession.link_id)
        .where(ChatSession.assistant_id == assistant_id)
    )
    if filters.user == "anonymous":
        query = query.where(ChatSession.link_id.is_(None), ChatSession.channel != Channel.PREVIEW)
    elif filters.user == Channel.PREVIEW:
        query = query.where(ChatSession.channel == Channel.PREVIEW)
    elif filters.user is not None:
        query = query.where(ChatSession.link_id == int(filters.user))
    if filters.channel:
        query = query.where(ChatSession.channel == filters.channel)
    if filters.start:
        query = query.where(ChatSession.started_at >= filters.start)
    if filters.end:
        query = query.where(ChatSession.started_at < filters.end)
    if filters.end_reason == OPEN:
        query = query.where(ChatSession.ended_at.is_(None))
    elif filters.end_reason:
        query = query.where(ChatSession.end_reason == filters.end_reason)
    if searching(filters) and db.get_bind().dialect.name == "postgresql":
        query = query.where(search.postgres_match(assistant_id, filters.q or ""))
    if filters.rating:
        # Through the index of rated replies (few), not the sessions' messages.
        query = query.where(ChatSession.id.in_(select(Message.session_id).where(Message.rating == filters.rating)))
    return query


def encode_cursor(row: SessionRow) -> str:
    return base64.urlsafe_b64encode(f"{row.started_at.isoformat()}|{row.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, ident = raw.partition("|")
        return datetime.fromisoformat(moment), int(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("This page cursor is not valid; start again from the first page.") from None


async def list_sessions(
    db: AsyncSession, *, assistant_id: int, filters: LogFilters, cursor: str | None = None, limit: int = 50
) -> tuple[list[SessionRow], str | None]:
    query = await _query(db, assistant_id, filters)
    if cursor:
        moment, ident = decode_cursor(cursor)
        # Keyset: strictly older than the last row shown, so new sessions never shift a page.
        query = query.where(tuple_(ChatSession.started_at, ChatSession.id) < tuple_(moment, ident))
    query = query.order_by(ChatSession.started_at.desc(), ChatSession.id.desc()).limit(limit + 1)
    if searching(filters) and db.get_bind().dialect.name != "postgresql":
        found = await _fts_page(db, query, filters.q or "", limit)
    elif searching(filters):
        # A search walks a few thousand sessions at most: parallel workers cost more to start than they
        # save (a medium word, 25 ms alone, 63 ms with two workers at a million sessions; this transaction only).
        await db.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        found = list((await db.execute(query)).all())
    else:
        found = list((await db.execute(query)).all())
    rows = [_row(r) for r in found]
    more = len(rows) > limit
    rows = await _with_ratings(db, rows[:limit])
    return rows, encode_cursor(rows[-1]) if more and rows else None


# A reply is saved with the moment it started (created_at), up to its timeout before its row is
# inserted: so a message's id can be newer than a message saved after it by this much at most.
SAVED_LATE = timedelta(hours=1)


async def _fts_page(db: AsyncSession, query: SessionQuery, q: str, limit: int) -> list[Any]:
    """SQLite: the page of `query` among sessions with a message matching `q`, reading the matching
    messages newest first in growing batches, until the page's last session started after every
    message not read yet (so no unread match could come before it), or no match is left."""
    sessions: set[int] = set()
    after: int | None = None
    size = search.FIRST_BATCH
    while len(sessions) <= search.MOST_SESSIONS:
        batch = await search.sqlite_newest(db, q, after_id=after, size=size)
        sessions.update(session for _, session, _ in batch)
        page = list((await db.execute(query.where(ChatSession.id.in_(sessions)))).all())
        if len(batch) < size:
            return page
        after, oldest = batch[-1][0], batch[-1][2]
        if len(page) > limit and page[-1][0].started_at > oldest + SAVED_LATE:
            return page
        size *= 2
    # Deep in a common word's matches (an export): every match at once, as one subquery.
    return list((await db.execute(query.where(search.sqlite_match(q)))).all())


async def _with_ratings(db: AsyncSession, rows: list[SessionRow]) -> list[SessionRow]:
    """The page's sessions with their replies' ratings, in order (one query: rated replies are few)."""
    if not rows:
        return rows
    rated = (
        select(Message.session_id, Message.rating, Message.rating_reason, Message.rating_comment)
        .where(Message.session_id.in_([row.id for row in rows]), Message.rating.is_not(None))
        .order_by(Message.session_id, Message.id)
    )
    ratings: dict[int, list[Rated]] = {}
    for session_id, rating, reason, comment in await db.execute(rated):
        ratings.setdefault(session_id, []).append(Rated(str(rating), reason, comment))
    return [replace(row, ratings=tuple(ratings.get(row.id, ()))) for row in rows]


def _row(result: Any) -> SessionRow:
    s: ChatSession = result[0]
    return SessionRow(
        id=s.id,
        started_at=s.started_at,
        ended_at=s.ended_at,
        last_activity_at=s.last_activity_at,
        user=user_label(channel=s.channel, link_name=result.link_name, link_revoked=result.link_revoked_at is not None),
        link_id=s.link_id,
        channel=s.channel,
        messages=s.message_count,
        tokens_in=s.tokens_in,
        tokens_out=s.tokens_out,
        end_reason=s.end_reason,
        version=s.version_number,
    )


async def get_session(db: AsyncSession, *, assistant_id: int, session_id: int) -> tuple[SessionRow, list[Message]]:
    query = (await _query(db, assistant_id, LogFilters())).where(ChatSession.id == session_id)
    result = (await db.execute(query)).one_or_none()
    if result is None:
        raise NotFound("This assistant has no session with this id.")
    messages = await db.scalars(select(Message).where(Message.session_id == session_id).order_by(Message.id))
    (row,) = await _with_ratings(db, [_row(result)])
    return row, list(messages)


def message_dict(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "created_at": m.created_at.isoformat(),
        "first_token_ms": m.first_token_ms,
        "duration_ms": m.duration_ms,
        "tokens_in": m.tokens_in,
        "tokens_out": m.tokens_out,
        "error_code": m.error_code,
        "sources": m.sources,
        "answered": m.answered,
        "rating": m.rating,
        "reason": m.rating_reason,
        "comment": m.rating_comment,
        "rated_at": m.rated_at.isoformat() if m.rated_at else None,
    }


async def export_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    assistant_id: int,
    filters: LogFilters,
    with_messages: bool,
    batch: int = 1000,
) -> AsyncIterator[list[tuple[SessionRow, list[Message]]]]:
    """Every matching session, a batch at a time, each batch in its own short transaction, so an
    export of a million sessions never holds them all in memory or one transaction open for long."""
    cursor = None
    while True:
        async with sessionmaker() as db:
            rows, cursor = await list_sessions(
                db, assistant_id=assistant_id, filters=filters, cursor=cursor, limit=batch
            )
            grouped: dict[int, list[Message]] = {row.id: [] for row in rows}
            if with_messages and rows:
                query = (
                    select(Message)
                    .where(Message.session_id.in_(list(grouped)))
                    .order_by(Message.session_id, Message.id)
                )
                for message in await db.scalars(query):
                    grouped[message.session_id].append(message)
        yield [(row, grouped[row.id]) for row in rows]
        if cursor is None:
            return
