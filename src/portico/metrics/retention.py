"""The purge: sessions and transcripts older than an assistant's retention are deleted (the hourly
rollups stay, so Metrics keep their counts for those days), and what deleted assistants and teams
left (sessions, transcripts, versions, links, rollups, a team's audit log) is erased."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.kit.chores import run_every, this_instance_runs
from portico.models import Assistant, ChatSession, Message, Team, utcnow

PURGE_SECONDS = 3600
BATCH = 2000
# A deleted assistant's guests are cut off at once; its rows wait this long, so that nothing still
# finishing (a reply being saved on another instance) writes into a row that is gone.
DELETED_GRACE = timedelta(minutes=15)


async def purge_expired(db: AsyncSession, *, batch: int = BATCH) -> int:
    """Delete one batch of expired sessions (with their messages) per assistant; returns how many."""
    deleted = 0
    assistants = await db.execute(select(Assistant.id, Assistant.retention_days).where(Assistant.retention_days > 0))
    for assistant_id, days in assistants.all():
        cutoff = utcnow() - timedelta(days=days)
        deleted += await _delete_sessions(
            db, ChatSession.assistant_id == assistant_id, ChatSession.started_at < cutoff, batch=batch
        )
    return deleted


async def _delete_sessions(db: AsyncSession, *where: ColumnElement[bool], batch: int) -> int:
    """Delete up to `batch` sessions matching `where`, with their messages; returns how many."""
    ids = list(await db.scalars(select(ChatSession.id).where(*where).limit(batch)))
    if ids:
        await db.execute(delete(Message).where(Message.session_id.in_(ids)))
        await db.execute(delete(ChatSession).where(ChatSession.id.in_(ids)))
    return len(ids)


async def purge_deleted(db: AsyncSession, *, batch: int = BATCH) -> int:
    """One batch of what deleted assistants and teams left; returns how many rows it erased.

    Sessions (with their messages) first, in batches; then the assistants with no session left
    (their versions, links and rollups go with them by ON DELETE CASCADE; the audit log keeps their
    entries, by name), then the deleted teams with no assistant left (memberships, invitations,
    tokens and the audit log go with them).
    """
    before = utcnow() - DELETED_GRACE
    deleted_assistants = select(Assistant.id).where(Assistant.deleted_at < before)
    sessions = await _delete_sessions(db, ChatSession.assistant_id.in_(deleted_assistants), batch=batch)
    if sessions:
        return sessions
    has_sessions = exists().where(ChatSession.assistant_id == Assistant.id)
    assistants: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        delete(Assistant).where(Assistant.deleted_at < before, ~has_sessions)
    )
    has_assistants = exists().where(Assistant.team_id == Team.id)
    teams: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        delete(Team).where(Team.deleted_at < before, ~has_assistants)
    )
    return assistants.rowcount + teams.rowcount


async def purge_all_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    # Small batches in short transactions, so the purge never blocks guests for long.
    deleted = 0
    while True:
        async with sessionmaker() as db, db.begin():
            if not await this_instance_runs(db, "purge"):
                return deleted
            batch = await purge_expired(db) + await purge_deleted(db)
        if batch == 0:
            return deleted
        deleted += batch


async def purge_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float = PURGE_SECONDS) -> None:
    await run_every("purge", every, lambda: purge_all_expired(sessionmaker))
