"""The periodic sweep: it ends sessions whose time ran out while nobody was looking, so that Logs
show the right end time without waiting for the guest's next request; and it marks `interrupted`
the replies whose instance died while streaming them (saved as they grew, then no more)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.assistants.schemas import SessionSettings
from portico.chat.sessions import expiry
from portico.kit.chores import run_every, this_instance_runs
from portico.models import AssistantVersion, ChatSession, Message, utcnow
from portico.models.base import UTCDateTime
from portico.vocabulary import Role

SWEEP_SECONDS = 30
# A reply in progress is saved at least every second while tokens flow; one not saved for this long
# lost its instance (or its model went silent that long, and its final save will correct the mark).
STALE_REPLY_SECONDS = 30
INTERRUPTED = "interrupted"


async def mark_interrupted_replies(db: AsyncSession) -> int:
    """Replies still in progress whose last save is stale, by the database's clock (instances'
    clocks may differ), marked `interrupted` with the text saved so far."""
    now = await db.scalar(select(func.now(type_=UTCDateTime)))
    assert now is not None
    stale = now - timedelta(seconds=STALE_REPLY_SECONDS)
    query = select(Message.id, Message.created_at, Message.saved_at).where(
        Message.role == Role.ASSISTANT, Message.duration_ms.is_(None), Message.saved_at < stale
    )
    rows = (await db.execute(query)).all()
    for row in rows:
        lasted = max(row.saved_at - row.created_at, timedelta(0)) if row.saved_at else timedelta(0)
        await db.execute(
            update(Message)
            .where(Message.id == row.id, Message.duration_ms.is_(None))
            .values(error_code=INTERRUPTED, duration_ms=round(lasted.total_seconds() * 1000))
        )
    return len(rows)


async def end_expired_sessions(db: AsyncSession) -> int:
    # Open sessions are few (the partial index ix_chat_sessions_open holds only them), so the
    # deadlines are computed here rather than in each database's own date arithmetic; only the
    # columns needed are read, and the ends are written in one batch.
    query = (
        select(ChatSession.id, ChatSession.started_at, ChatSession.last_activity_at, AssistantVersion.settings)
        .outerjoin(
            AssistantVersion,
            (AssistantVersion.assistant_id == ChatSession.assistant_id)
            & (AssistantVersion.number == ChatSession.version_number),
        )
        .where(ChatSession.ended_at.is_(None))
    )
    now = utcnow()
    defaults = SessionSettings().model_dump()
    ends = []
    for row in (await db.execute(query)).all():
        # Draft previews (version 0) have no version row: the default limits apply.
        expired = expiry(
            started_at=row.started_at,
            last_activity_at=row.last_activity_at,
            settings=row.settings or defaults,
            now=now,
        )
        if expired is not None:
            ends.append({"p_id": row.id, "p_reason": expired[0], "p_at": expired[1]})
    if ends:
        await (await db.connection()).execute(_END, ends)
    return len(ends)


_END = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_id"), ChatSession.ended_at.is_(None))
    .values(ended_at=bindparam("p_at"), end_reason=bindparam("p_reason"))
)


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as db, db.begin():
        if not await this_instance_runs(db, "sweep"):
            return 0
        await mark_interrupted_replies(db)
        return await end_expired_sessions(db)


async def sweep_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float = SWEEP_SECONDS) -> None:
    await run_every("sweep", every, lambda: sweep_once(sessionmaker))
