"""Today's use of an assistant against its daily quotas (docs/design.md, "Quotas").

The guest store counts sessions and tokens in `daily_usage` as they happen, but only while the
assistant has a cap: an uncapped assistant pays nothing for quotas. So when an owner sets a cap
(from 0), today's row is first set from what already happened today, and a cap set at noon counts
the morning.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portico.metrics.rollup import settle
from portico.models import Assistant, ChatSession, DailyUsage, Message, UsageHourly, utcnow
from portico.vocabulary import Channel, Role


def day_of(moment: datetime) -> datetime:
    """The UTC day a moment falls in, as its midnight."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_day(now: datetime) -> int:
    """Retry-After for a daily quota: whole seconds to the next UTC midnight (at least 1)."""
    return max(1, int((day_of(now) + timedelta(days=1) - now).total_seconds() + 0.999))


async def used_today(db: AsyncSession, *, assistant_id: int, now: datetime | None = None) -> tuple[int, int]:
    """Guest sessions started today and tokens of today's replies, counted from the raw rows."""
    day = day_of(now or utcnow())
    guest = (ChatSession.assistant_id == assistant_id, ChatSession.channel != Channel.PREVIEW)
    sessions = await db.scalar(select(func.count()).where(*guest, ChatSession.started_at >= day))
    tokens = await db.scalar(
        select(func.coalesce(func.sum(Message.tokens_in + Message.tokens_out), 0))
        .join(ChatSession, ChatSession.id == Message.session_id)
        .where(*guest, Message.role == Role.ASSISTANT, Message.created_at >= day)
    )
    return int(sessions or 0), int(tokens or 0)


async def start_counting(db: AsyncSession, *, assistant_id: int, sessions: bool, tokens: bool) -> None:
    """Set today's counts from the raw rows, for the counters whose cap was just set from 0.

    Only those: the other counter, if its cap was already set, is being counted live, and
    overwriting it could lose a start committed meanwhile.
    """
    if not (sessions or tokens):
        return
    now = utcnow()
    started, spent = await used_today(db, assistant_id=assistant_id, now=now)
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(DailyUsage).values(
        assistant_id=assistant_id, day=day_of(now), sessions=started if sessions else 0, tokens=spent if tokens else 0
    )
    excluded = statement.excluded
    updates = {"sessions": excluded.sessions} if sessions else {}
    updates |= {"tokens": excluded.tokens} if tokens else {}
    await db.execute(statement.on_conflict_do_update(index_elements=["assistant_id", "day"], set_=updates))


async def counted_today(db: AsyncSession, *, assistant_id: int, now: datetime) -> tuple[int, int]:
    """Guest sessions started today and tokens of today's replies, from the hourly rollups (the
    current hour recomputed first): a page costs the same whatever the day brought."""
    await settle(db, assistant_id=assistant_id, now=now)
    row = (
        await db.execute(
            select(
                func.coalesce(func.sum(UsageHourly.sessions), 0),
                func.coalesce(func.sum(UsageHourly.tokens_in + UsageHourly.tokens_out), 0),
            ).where(UsageHourly.assistant_id == assistant_id, UsageHourly.hour >= day_of(now))
        )
    ).one()
    return int(row[0]), int(row[1])


async def quota_use(db: AsyncSession, *, assistant: Assistant) -> dict[str, Any]:
    """Each quota with today's use: what the store counts while a cap is set (what it enforces),
    the hourly rollups otherwise (the same counts, without reading the day's messages)."""
    now = utcnow()
    started, spent = await counted_today(db, assistant_id=assistant.id, now=now)
    counted = (
        await db.execute(
            select(DailyUsage.sessions, DailyUsage.tokens).where(
                DailyUsage.assistant_id == assistant.id, DailyUsage.day == day_of(now)
            )
        )
    ).first()
    if counted is not None:
        started = counted.sessions if assistant.sessions_per_day else started
        spent = counted.tokens if assistant.tokens_per_day else spent
    return {
        "day": day_of(now).date().isoformat(),
        "messages_per_session": {"cap": assistant.messages_per_session},
        "sessions_per_day": {"cap": assistant.sessions_per_day, "used": started},
        "tokens_per_day": {"cap": assistant.tokens_per_day, "used": spent},
    }
