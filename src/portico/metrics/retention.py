"""The retention purge: sessions and transcripts older than an assistant's retention are deleted.
The hourly rollups stay, so Metrics keep their counts for those days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.kit.chores import run_every, this_instance_runs
from portico.models import Assistant, ChatSession, Message, utcnow

PURGE_SECONDS = 3600
BATCH = 2000


async def purge_expired(db: AsyncSession, *, batch: int = BATCH) -> int:
    """Delete one batch of expired sessions (with their messages) per assistant; returns how many."""
    deleted = 0
    assistants = await db.execute(select(Assistant.id, Assistant.retention_days).where(Assistant.retention_days > 0))
    for assistant_id, days in assistants.all():
        cutoff = utcnow() - timedelta(days=days)
        ids = list(
            await db.scalars(
                select(ChatSession.id)
                .where(ChatSession.assistant_id == assistant_id, ChatSession.started_at < cutoff)
                .limit(batch)
            )
        )
        if ids:
            await db.execute(delete(Message).where(Message.session_id.in_(ids)))
            await db.execute(delete(ChatSession).where(ChatSession.id.in_(ids)))
            deleted += len(ids)
    return deleted


async def purge_all_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    # Small batches in short transactions, so the purge never blocks guests for long.
    deleted = 0
    while True:
        async with sessionmaker() as db, db.begin():
            if not await this_instance_runs(db, "purge"):
                return deleted
            batch = await purge_expired(db)
        if batch == 0:
            return deleted
        deleted += batch


async def purge_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float = PURGE_SECONDS) -> None:
    await run_every("purge", every, lambda: purge_all_expired(sessionmaker))
