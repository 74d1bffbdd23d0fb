"""Private links: named users or groups, each with its own key and cap on sessions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.access.gate import KEY_PREFIX
from portico.access.schemas import LinkIn, LinkOut
from portico.chat import lifecycle
from portico.errors import Conflict, LimitReached, NotFound
from portico.kit.crypto import Vault, digest, new_token
from portico.models import Assistant, PrivateLink, utcnow


class LinkNotFound(NotFound):
    code = "not_found"
    message = "This assistant has no private link with this id."


class LinkAlreadyRevoked(Conflict):
    code = "link_revoked"
    message = "This private link has been deleted; create a new one instead."


class TooManyLinks(LimitReached):
    code = "link_limit_reached"


def link_out(link: PrivateLink, *, vault: Vault, base_url: str) -> LinkOut:
    return LinkOut(
        id=link.id,
        name=link.name,
        max_sessions=link.max_sessions,
        sessions_used=link.sessions_used,
        sessions_left=None if link.max_sessions == 0 else max(link.max_sessions - link.sessions_used, 0),
        url=f"{base_url}/c#k={vault.decrypt(link.key_encrypted)}",
        revoked=link.revoked_at is not None,
        created_at=link.created_at,
        last_used_at=link.last_used_at,
    )


async def count_active(db: AsyncSession, *, assistant_id: int) -> int:
    query = select(func.count()).where(PrivateLink.assistant_id == assistant_id, PrivateLink.revoked_at.is_(None))
    return await db.scalar(query) or 0


async def create_links(
    db: AsyncSession, *, assistant: Assistant, items: list[LinkIn], limit: int, vault: Vault
) -> list[PrivateLink]:
    # Lock the assistant row so two batches at once cannot both pass the limit (PostgreSQL;
    # SQLite's write lock, taken at BEGIN, already serialises them).
    await db.execute(select(Assistant.id).where(Assistant.id == assistant.id).with_for_update())
    room = limit - await count_active(db, assistant_id=assistant.id)
    if len(items) > room:
        raise TooManyLinks(
            f"An assistant can have {limit} active private links; {max(room, 0)} more can be created, "
            f"not {len(items)}. Nothing was created."
        )
    links = []
    for item in items:
        key = new_token(KEY_PREFIX)
        links.append(
            PrivateLink(
                assistant_id=assistant.id,
                name=item.name,
                max_sessions=item.max_sessions,
                key_digest=digest(key),
                key_encrypted=vault.encrypt(key),
            )
        )
    db.add_all(links)
    await db.flush()
    return links


async def list_links(db: AsyncSession, *, assistant: Assistant, include_revoked: bool = False) -> list[PrivateLink]:
    query = select(PrivateLink).where(PrivateLink.assistant_id == assistant.id).order_by(PrivateLink.id)
    if not include_revoked:
        query = query.where(PrivateLink.revoked_at.is_(None))
    return list(await db.scalars(query))


async def get_link(db: AsyncSession, *, assistant: Assistant, link_id: int) -> PrivateLink:
    link = await db.scalar(
        select(PrivateLink).where(PrivateLink.id == link_id, PrivateLink.assistant_id == assistant.id)
    )
    if link is None:
        raise LinkNotFound()
    return link


async def update_link(
    db: AsyncSession, *, assistant: Assistant, link_id: int, name: str | None, max_sessions: int | None
) -> PrivateLink:
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkAlreadyRevoked()
    if name is not None:
        link.name = name
    if max_sessions is not None:
        # Lowering the cap below the uses already taken makes the link exhausted; not an error.
        link.max_sessions = max_sessions
    await db.flush()
    return link


async def delete_link(db: AsyncSession, *, assistant: Assistant, link_id: int) -> None:
    await get_link(db, assistant=assistant, link_id=link_id)
    revoked: CursorResult[Any] = await db.execute(  # type: ignore[assignment]  # an UPDATE's result is a cursor result
        update(PrivateLink)
        .where(PrivateLink.id == link_id, PrivateLink.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount == 0:
        raise LinkAlreadyRevoked("This private link was already deleted.")
    await lifecycle.link_revoked(db, assistant_id=assistant.id, link_id=link_id)


async def reissue_link(db: AsyncSession, *, assistant: Assistant, link_id: int, vault: Vault) -> PrivateLink:
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkAlreadyRevoked()
    key = new_token(KEY_PREFIX)
    link.key_digest = digest(key)
    link.key_encrypted = vault.encrypt(key)
    await db.flush()
    return link
