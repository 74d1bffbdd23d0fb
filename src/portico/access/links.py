"""Private links: named users or groups, each with its own key and cap on sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.access.gate import KEY_PREFIX
from portico.access.schemas import BulkAction, LinkIn, LinkOut, LinkState
from portico.chat import lifecycle
from portico.errors import Conflict, LimitReached, NotFound
from portico.identity import audit
from portico.identity.roles import Action, Member, require
from portico.kit.crypto import Vault, digest, new_token
from portico.models import Assistant, PrivateLink, RetiredLinkKey, utcnow
from portico.vocabulary import AuditAction


class Unchanged:
    """An argument left out, where None means something (`expires_at=None`: never)."""


UNCHANGED = Unchanged()


class LinkNotFound(NotFound):
    code = "not_found"
    message = "This assistant has no private link with this id."


class LinkAlreadyRevoked(Conflict):
    code = "link_revoked"
    message = "This private link has been deleted; create a new one instead."


class LinkGone(NotFound):
    code = "not_found"
    message = "This private link has been deleted: it has no link to show and no QR code."


class TooManyLinks(LimitReached):
    code = "link_limit_reached"


def state_of(link: PrivateLink, now: datetime) -> LinkState:
    """The first of the gate's link rows (5 to 6) that holds, or active."""
    if link.revoked_at is not None:
        return "deleted"
    if link.paused:
        return "paused"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    if link.max_sessions > 0 and link.sessions_used >= link.max_sessions:
        return "exhausted"
    return "active"


def public_url(assistant: Assistant, *, base_url: str) -> str:
    return f"{base_url}/c/{assistant.public_id}"


def link_url(link: PrivateLink, *, vault: Vault, base_url: str) -> str:
    # The key rides in the fragment, which browsers never send to a server.
    return f"{base_url}/c#k={vault.decrypt(link.key_encrypted)}"


def link_out(link: PrivateLink, *, vault: Vault, base_url: str) -> LinkOut:
    return LinkOut(
        id=link.id,
        name=link.name,
        max_sessions=link.max_sessions,
        sessions_used=link.sessions_used,
        sessions_left=None if link.max_sessions == 0 else max(link.max_sessions - link.sessions_used, 0),
        url=link_url(link, vault=vault, base_url=base_url),
        revoked=link.revoked_at is not None,
        paused=link.paused,
        expires_at=link.expires_at,
        state=state_of(link, utcnow()),
        created_at=link.created_at,
        last_used_at=link.last_used_at,
    )


async def count_active(db: AsyncSession, *, assistant_id: int) -> int:
    query = select(func.count()).where(PrivateLink.assistant_id == assistant_id, PrivateLink.revoked_at.is_(None))
    return await db.scalar(query) or 0


async def create_links(
    db: AsyncSession, *, member: Member, assistant: Assistant, items: list[LinkIn], limit: int, vault: Vault
) -> list[PrivateLink]:
    require(member, Action.SHARE)
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
    for link in links:
        await _record(db, member, AuditAction.LINK_CREATED, link, cap=link.max_sessions)
    return links


async def _record(db: AsyncSession, member: Member, action: AuditAction, link: PrivateLink, **detail: Any) -> None:
    """A link's entry names the link (its name and id), never its key."""
    await audit.record(db, member=member, action=action, assistant_id=link.assistant_id, link=link.name, **detail)


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


async def live_link(db: AsyncSession, *, assistant: Assistant, link_id: int) -> PrivateLink:
    """A link that still works, to show (its QR code): a deleted one is 404, like one never made."""
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkGone()
    return link


async def live_links(db: AsyncSession, *, assistant: Assistant, ids: list[int]) -> list[PrivateLink]:
    """The selected links not deleted, in the order of `ids` (ids of other assistants are left out)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    query = select(PrivateLink).where(
        PrivateLink.assistant_id == assistant.id, PrivateLink.id.in_(wanted), PrivateLink.revoked_at.is_(None)
    )
    found = {link.id: link for link in await db.scalars(query)}
    return [found[i] for i in wanted if i in found]


async def update_link(
    db: AsyncSession,
    *,
    member: Member,
    assistant: Assistant,
    link_id: int,
    name: str | None = None,
    max_sessions: int | None = None,
    paused: bool | None = None,
    expires_at: datetime | None | Unchanged = UNCHANGED,
) -> PrivateLink:
    """Change what is given. A deleted link answers 409: it can be neither resumed nor edited."""
    require(member, Action.SHARE)
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkAlreadyRevoked()
    if name is not None and name != link.name:
        await _record(db, member, AuditAction.LINK_RENAMED, link, name=name)
        link.name = name
    if max_sessions is not None and max_sessions != link.max_sessions:
        # Lowering the cap below the uses already taken makes the link exhausted; not an error.
        link.max_sessions = max_sessions
        await _record(db, member, AuditAction.LINK_CAP, link, cap=max_sessions)
    if paused is not None and paused != link.paused:
        link.paused = paused
        await _record(db, member, AuditAction.LINK_PAUSED if paused else AuditAction.LINK_RESUMED, link)
    if not isinstance(expires_at, Unchanged) and expires_at != link.expires_at:
        # A time already past ends the link at once, like lowering a cap below its uses.
        link.expires_at = expires_at
        await _record(db, member, AuditAction.LINK_EXPIRY, link, ends=expires_at.isoformat() if expires_at else "never")
    await db.flush()
    return link


async def reset_link(db: AsyncSession, *, member: Member, assistant: Assistant, link_id: int) -> PrivateLink:
    """Its uses back to 0: an exhausted link works again, with its whole cap."""
    require(member, Action.SHARE)
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkAlreadyRevoked()
    if link.sessions_used == 0:
        return link  # nothing to reset, so nothing to record
    await _record(db, member, AuditAction.LINK_RESET, link, used=link.sessions_used)
    link.sessions_used = 0
    await db.flush()
    return link


def repeated_names(new: list[str], existing: list[str]) -> list[str]:
    """The new names that another new name or an existing link already has (letter case aside),
    each once, in the order given."""
    seen = {name.casefold() for name in existing}
    repeated: list[str] = []
    for name in new:
        key = name.casefold()
        if key in seen and key not in {r.casefold() for r in repeated}:
            repeated.append(name)
        seen.add(key)
    return repeated


async def bulk(
    db: AsyncSession,
    *,
    member: Member,
    assistant: Assistant,
    ids: list[int],
    action: BulkAction,
    expires_at: datetime | None,
) -> list[PrivateLink]:
    """One action on a selection, all or nothing: every id must be a link of this assistant
    (404 naming the others) still not deleted (409 naming the deleted ones)."""
    require(member, Action.SHARE)
    wanted = sorted(set(ids))
    query = select(PrivateLink).where(PrivateLink.assistant_id == assistant.id, PrivateLink.id.in_(wanted))
    links = list(await db.scalars(query.order_by(PrivateLink.id)))
    missing = sorted(set(wanted) - {link.id for link in links})
    if missing:
        raise LinkNotFound(f"This assistant has no private link with these ids: {_ids(missing)}. Nothing was changed.")
    deleted = [link.id for link in links if link.revoked_at is not None]
    if deleted:
        raise LinkAlreadyRevoked(f"These links have been deleted: {_ids(deleted)}. Nothing was changed.")
    if action == "delete":
        for link in links:
            await delete_link(db, member=member, assistant=assistant, link_id=link.id)
        await db.flush()
        for link in links:
            await db.refresh(link)
        return links
    # Only a link the action changes gets an entry: resuming a link never paused changes nothing.
    for link in links:
        if action in ("pause", "resume"):
            paused = action == "pause"
            if link.paused != paused:
                link.paused = paused
                await _record(db, member, AuditAction.LINK_PAUSED if paused else AuditAction.LINK_RESUMED, link)
        elif link.expires_at != (ends := expires_at or utcnow()):
            link.expires_at = ends
            await _record(db, member, AuditAction.LINK_EXPIRY, link, ends=ends.isoformat())
    await db.flush()
    return links


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20])
    return shown + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")


async def delete_link(db: AsyncSession, *, member: Member, assistant: Assistant, link_id: int) -> None:
    require(member, Action.SHARE)
    link = await get_link(db, assistant=assistant, link_id=link_id)
    revoked: CursorResult[Any] = await db.execute(  # type: ignore[assignment]  # an UPDATE's result is a cursor result
        update(PrivateLink)
        .where(PrivateLink.id == link_id, PrivateLink.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount == 0:
        raise LinkAlreadyRevoked("This private link was already deleted.")
    await _record(db, member, AuditAction.LINK_DELETED, link)
    await lifecycle.link_revoked(db, assistant_id=assistant.id, link_id=link_id)


async def reissue_link(
    db: AsyncSession, *, member: Member, assistant: Assistant, link_id: int, vault: Vault
) -> PrivateLink:
    require(member, Action.SHARE)
    link = await get_link(db, assistant=assistant, link_id=link_id)
    if link.revoked_at is not None:
        raise LinkAlreadyRevoked()
    await _record(db, member, AuditAction.LINK_REISSUED, link)
    # The old key stays known by its digest alone, so its guests hear the link was replaced.
    db.add(RetiredLinkKey(key_digest=link.key_digest, link_id=link.id))
    key = new_token(KEY_PREFIX)
    link.key_digest = digest(key)
    link.key_encrypted = vault.encrypt(key)
    await db.flush()
    await lifecycle.link_reissued(db, assistant_id=assistant.id, link_id=link.id)
    return link


STATE_ORDER: dict[str, int] = {"active": 0, "paused": 1, "expired": 2, "exhausted": 3, "deleted": 4}
SORT_KEYS: dict[str, Callable[[LinkOut], Any]] = {
    "created": lambda o: o.id,
    "name": lambda o: (o.name.casefold(), o.id),
    "state": lambda o: (STATE_ORDER[o.state], o.expires_at or datetime.max.replace(tzinfo=UTC), o.id),
    "sessions": lambda o: (o.sessions_used, o.id),
}


@dataclass(frozen=True)
class Listing:
    """How the Users table is shown: filtered by a part of the name and sorted by a column
    (`-name`: descending). Read from the page's query string, so it works without JavaScript."""

    query: str = ""
    sort: str = "created"
    descending: bool = False
    deleted: bool = False

    @classmethod
    def of(cls, query: str, sort: str, *, deleted: bool = False) -> Listing:
        descending = sort.startswith("-")
        key = sort.removeprefix("-")
        if key not in SORT_KEYS:
            key, descending = "created", False
        return cls(query=query.strip()[:200], sort=key, descending=descending, deleted=deleted)

    def apply(self, outs: list[LinkOut]) -> list[LinkOut]:
        wanted = self.query.casefold()
        shown = [o for o in outs if wanted in o.name.casefold()]
        return sorted(shown, key=SORT_KEYS[self.sort], reverse=self.descending)

    def toggled(self, key: str) -> str:
        """The sort parameter a column heading links to: ascending first, then descending."""
        return f"-{key}" if self.sort == key and not self.descending else key
