from __future__ import annotations

from fastapi import APIRouter, Response

from portico.access import links as service
from portico.access import qr
from portico.access.schemas import BulkDone, LinkCreated, LinkList, LinkOut, LinksBulk, LinksCreate, LinkUpdate
from portico.assistants.deps import OwnedAssistant
from portico.db import SessionDep
from portico.deps import SettingsDep, VaultDep
from portico.identity.deps import CurrentMember
from portico.schemas import Id

router = APIRouter(prefix="/assistants/{assistant_id}/links", tags=["private links"])


@router.post("", status_code=201)
async def create_links(
    body: LinksCreate,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> LinkCreated:
    links = await service.create_links(
        db, member=member, assistant=assistant, items=body.links, limit=settings.max_private_links, vault=vault
    )
    return LinkCreated(items=[service.link_out(link, vault=vault, base_url=settings.base_url) for link in links])


@router.get("")
async def list_links(
    assistant: OwnedAssistant, db: SessionDep, settings: SettingsDep, vault: VaultDep, include_revoked: bool = False
) -> LinkList:
    links = await service.list_links(db, assistant=assistant, include_revoked=include_revoked)
    return LinkList(
        items=[service.link_out(link, vault=vault, base_url=settings.base_url) for link in links],
        active=sum(1 for link in links if link.revoked_at is None),
        limit=settings.max_private_links,
    )


@router.patch("/{link_id}")
async def update_link(
    link_id: Id,
    body: LinkUpdate,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> LinkOut:
    """Rename, re-cap, pause or resume, or set or remove the end date (`expires_at: null`)."""
    given = body.model_fields_set
    link = await service.update_link(
        db,
        member=member,
        assistant=assistant,
        link_id=link_id,
        name=body.name,
        max_sessions=body.max_sessions,
        paused=body.paused,
        expires_at=body.expires_at if "expires_at" in given else service.UNCHANGED,
    )
    return service.link_out(link, vault=vault, base_url=settings.base_url)


@router.post("/bulk")
async def bulk(
    body: LinksBulk,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> BulkDone:
    """Delete, pause, resume or expire a selection of links, all or nothing."""
    links = await service.bulk(
        db, member=member, assistant=assistant, ids=body.ids, action=body.action, expires_at=body.expires_at
    )
    return BulkDone(items=[service.link_out(link, vault=vault, base_url=settings.base_url) for link in links])


@router.post("/{link_id}/reset")
async def reset_link(
    link_id: Id,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> LinkOut:
    """Set sessions_used back to 0."""
    link = await service.reset_link(db, member=member, assistant=assistant, link_id=link_id)
    return service.link_out(link, vault=vault, base_url=settings.base_url)


@router.delete("/{link_id}", status_code=204)
async def delete_link(link_id: Id, assistant: OwnedAssistant, member: CurrentMember, db: SessionDep) -> Response:
    await service.delete_link(db, member=member, assistant=assistant, link_id=link_id)
    return Response(status_code=204)


@router.post("/{link_id}/reissue")
async def reissue_link(
    link_id: Id,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> LinkOut:
    link = await service.reissue_link(db, member=member, assistant=assistant, link_id=link_id, vault=vault)
    return service.link_out(link, vault=vault, base_url=settings.base_url)


@router.get("/{link_id}/qr", response_class=Response, responses=qr.RESPONSES)
async def link_qr(
    link_id: Id, assistant: OwnedAssistant, db: SessionDep, settings: SettingsDep, vault: VaultDep
) -> Response:
    """The link's QR code as SVG, by the link's id (never its key); a deleted link's is 404."""
    link = await service.live_link(db, assistant=assistant, link_id=link_id)
    return qr.response(service.link_url(link, vault=vault, base_url=settings.base_url))
