"""What happens to running sessions when an owner changes what guests may reach.

Going Offline, deleting an assistant, deleting or reissuing a private link and making an assistant private
end the sessions they concern in the owner's own transaction, and announce the cut-off so that
replies being streamed stop on every instance once that transaction commits (cutoff.py).
The owner's previews are ended only with their assistant: an Offline assistant can be previewed.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.chat.cutoff import announce
from portico.models import ChatSession, utcnow
from portico.vocabulary import Channel, EndReason


async def assistant_offline(db: AsyncSession, *, assistant_id: int) -> None:
    await _end(db, EndReason.ASSISTANT_OFFLINE, assistant_id, guests_only=True)


async def assistant_deleted(db: AsyncSession, *, assistant_id: int) -> None:
    await _end(db, EndReason.ASSISTANT_DELETED, assistant_id, guests_only=False)


async def link_revoked(db: AsyncSession, *, assistant_id: int, link_id: int) -> None:
    await _end(db, EndReason.LINK_REVOKED, assistant_id, guests_only=True, link_id=link_id)


async def link_reissued(db: AsyncSession, *, assistant_id: int, link_id: int) -> None:
    """The sessions started with the old key end, as if the link were deleted; the new key's start anew."""
    await _end(db, EndReason.LINK_REISSUED, assistant_id, guests_only=True, link_id=link_id)


async def made_private(db: AsyncSession, *, assistant_id: int) -> None:
    """Guests on the public link stop too, not only new ones; private links go on."""
    await _end(db, EndReason.MADE_PRIVATE, assistant_id, guests_only=True, public_only=True)


async def _end(
    db: AsyncSession,
    reason: EndReason,
    assistant_id: int,
    *,
    guests_only: bool,
    link_id: int | None = None,
    public_only: bool = False,
) -> None:
    query = update(ChatSession).where(ChatSession.assistant_id == assistant_id, ChatSession.ended_at.is_(None))
    if guests_only:
        query = query.where(ChatSession.channel != Channel.PREVIEW)
    if link_id is not None:
        query = query.where(ChatSession.link_id == link_id)
    if public_only:
        query = query.where(ChatSession.link_id.is_(None))
    await db.execute(query.values(ended_at=utcnow(), end_reason=reason))
    await announce(db, code=reason, assistant_id=assistant_id, link_id=link_id)
