"""Recomputing the hourly rollups from the raw sessions and messages.

Every process recomputes the last two hours once a minute (and the Metrics page recomputes
the current hour of its assistant before reading), so Metrics lag by a minute at most. Older
hours are final: a session's duration is counted in the hour it ended, a message in the hour it
was written, so nothing changes an old hour. Rows are upserted, so instances recomputing the
same hour at once agree.

Ratings are the one exception: a reply's rating is counted in the hour the reply was written
(so an hour's share of replies rated up or down is a share of that hour's replies), and a guest
may rate, or change a rating, later. So a rating made in the recomputed window of a reply
written before it recounts that older hour's ratings (those two columns only) from the raw rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.kit.chores import run_every, this_instance_runs
from portico.metrics.histogram import histogram
from portico.models import ChatSession, Message, UsageHourly, UsageUserHourly, utcnow
from portico.vocabulary import Channel, Rating, Role

ROLLUP_SECONDS = 60
ENGINE_ERRORS = ("engine_error", "engine_timeout", "engine_unreachable")
# The rollup's column for each rating.
RATED: dict[str, str] = {Rating.UP.value: "rated_up", Rating.DOWN.value: "rated_down"}


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def upsert(db: AsyncSession, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(rows)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    await db.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates))


async def recompute(db: AsyncSession, *, start: datetime, end: datetime, assistant_id: int | None = None) -> int:
    """Recompute every hour in [hour_of(start), end) from raw rows; returns the rows written."""
    start = hour_of(start)
    only = [ChatSession.assistant_id == assistant_id] if assistant_id is not None else []
    guest = ChatSession.channel != Channel.PREVIEW
    usage: dict[tuple[int, datetime], dict[str, Any]] = defaultdict(_empty_usage)
    users: dict[tuple[int, datetime, int], dict[str, Any]] = defaultdict(
        lambda: {"sessions": 0, "messages": 0, "last_seen": None}
    )
    durations: dict[tuple[int, datetime], list[float]] = defaultdict(list)
    first_tokens: dict[tuple[int, datetime], list[float]] = defaultdict(list)

    started = select(ChatSession.assistant_id, ChatSession.started_at, ChatSession.channel, ChatSession.link_id).where(
        guest, ChatSession.started_at >= start, ChatSession.started_at < end, *only
    )
    for row in await db.execute(started):
        key = (row.assistant_id, hour_of(row.started_at))
        usage[key]["sessions"] += 1
        usage[key]["channels"][row.channel] = usage[key]["channels"].get(row.channel, 0) + 1
        if row.link_id is not None:
            user = users[(row.assistant_id, key[1], row.link_id)]
            user["sessions"] += 1
            user["last_seen"] = max(filter(None, [user["last_seen"], row.started_at]))

    # The next two queries are driven by their time index (ended_at, messages.created_at) and
    # filtered by assistant here: with the assistant in the WHERE clause, SQLite's planner walks
    # all of the assistant's sessions instead (12 s at a million sessions; bench/logs_metrics.py).
    ended = select(ChatSession.assistant_id, ChatSession.started_at, ChatSession.ended_at).where(
        guest, ChatSession.ended_at >= start, ChatSession.ended_at < end
    )
    for ended_row in await db.execute(ended):
        if assistant_id is not None and ended_row.assistant_id != assistant_id:
            continue
        key = (ended_row.assistant_id, hour_of(ended_row.ended_at))
        seconds = max(0.0, (ended_row.ended_at - ended_row.started_at).total_seconds())
        usage[key]["sessions_ended"] += 1
        usage[key]["duration_sum"] += round(seconds)
        durations[key].append(seconds)

    messages = (
        select(
            ChatSession.assistant_id,
            ChatSession.link_id,
            Message.created_at,
            Message.role,
            Message.first_token_ms,
            Message.tokens_in,
            Message.tokens_out,
            Message.error_code,
            Message.rating,
        )
        .join(ChatSession, ChatSession.id == Message.session_id)
        .where(guest, Message.created_at >= start, Message.created_at < end)
    )
    for message in await db.execute(messages):
        if assistant_id is not None and message.assistant_id != assistant_id:
            continue
        key = (message.assistant_id, hour_of(message.created_at))
        bucket = usage[key]
        if message.role == Role.GUEST:
            bucket["guest_messages"] += 1
        else:
            bucket["replies"] += 1
            bucket["tokens_in"] += message.tokens_in or 0
            bucket["tokens_out"] += message.tokens_out or 0
            if message.error_code in ENGINE_ERRORS:
                bucket["engine_errors"] += 1
            if message.first_token_ms is not None:
                first_tokens[key].append(message.first_token_ms)
            if message.rating is not None:
                bucket[RATED[message.rating]] += 1
        if message.link_id is not None:
            user = users[(message.assistant_id, key[1], message.link_id)]
            user["messages"] += 1
            user["last_seen"] = max(filter(None, [user["last_seen"], message.created_at]))

    usage_rows = [
        {
            "assistant_id": a,
            "hour": h,
            **values,
            "duration_bins": histogram(durations.get((a, h), [])),
            "first_token_bins": histogram(first_tokens.get((a, h), [])),
        }
        for (a, h), values in usage.items()
    ]
    user_rows = [{"assistant_id": a, "hour": h, "link_id": link, **values} for (a, h, link), values in users.items()]
    for chunk in _chunks(usage_rows):
        await upsert(db, UsageHourly, chunk, ["assistant_id", "hour"])
    for chunk in _chunks(user_rows):
        await upsert(db, UsageUserHourly, chunk, ["assistant_id", "hour", "link_id"])
    late = await _recount_late_ratings(db, start=start, end=end, only=only)
    return len(usage_rows) + len(user_rows) + late


async def _recount_late_ratings(db: AsyncSession, *, start: datetime, end: datetime, only: list[Any]) -> int:
    """Older hours whose replies were rated in [start, end): their rated counts, as rated now."""
    guest_replies = (
        ChatSession.channel != Channel.PREVIEW,
        Message.role == Role.ASSISTANT,
    )
    rated_late = (
        select(ChatSession.assistant_id, Message.created_at)
        .join(ChatSession, ChatSession.id == Message.session_id)
        .where(
            *guest_replies,
            # Says what the partial index of rated replies covers, or PostgreSQL cannot use it and reads
            # every message, on every Metrics page and every minute (issue 22: 0.5-0.9 s at 10 M messages).
            Message.rating.is_not(None),
            Message.rated_at >= start,
            Message.rated_at < end,
            Message.created_at < start,
            *only,
        )
    )
    hours = {(row.assistant_id, hour_of(row.created_at)) for row in await db.execute(rated_late)}
    rows = []
    for assistant, hour in sorted(hours):
        counts = (
            select(Message.rating, func.count())
            .join(ChatSession, ChatSession.id == Message.session_id)
            .where(
                *guest_replies,
                ChatSession.assistant_id == assistant,
                Message.created_at >= hour,
                Message.created_at < hour + timedelta(hours=1),
                Message.rating.is_not(None),
            )
            .group_by(Message.rating)
        )
        row: dict[str, Any] = {"assistant_id": assistant, "hour": hour, "rated_up": 0, "rated_down": 0}
        for rating, count in await db.execute(counts):
            row[RATED[str(rating)]] = count
        rows.append(row)
    for chunk in _chunks(rows):
        await upsert(db, UsageHourly, chunk, ["assistant_id", "hour"])
    return len(rows)


def _empty_usage() -> dict[str, Any]:
    return {
        "sessions": 0,
        "channels": {},
        "guest_messages": 0,
        "replies": 0,
        "engine_errors": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "sessions_ended": 0,
        "duration_sum": 0,
        "rated_up": 0,
        "rated_down": 0,
    }


def _chunks(rows: list[dict[str, Any]], size: int = 500) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def settle(db: AsyncSession, *, assistant_id: int, now: datetime | None = None) -> None:
    """Recompute what the minutely chore may not have counted yet, for one assistant, once per
    database session: the current hour, and in an hour's first minutes the one before it too (a
    session started at 10:59:50 is missing from the 10:00 rollup until the chore's next run)."""
    settled: set[int] = db.info.setdefault("settled_assistants", set())
    if assistant_id in settled:
        return
    now = now or utcnow()
    await recompute(
        db,
        start=hour_of(now - timedelta(seconds=2 * ROLLUP_SECONDS)),
        end=now + timedelta(hours=1),
        assistant_id=assistant_id,
    )
    settled.add(assistant_id)


async def rollup_recent(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as db, db.begin():
        if not await this_instance_runs(db, "rollup"):
            return 0
        now = utcnow()
        return await recompute(db, start=now - timedelta(hours=2), end=now + timedelta(hours=1))


async def rollup_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float = ROLLUP_SECONDS) -> None:
    await run_every("rollup", every, lambda: rollup_recent(sessionmaker))
