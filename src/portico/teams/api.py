"""`/api/v1/team`: the token's team, its members, invitations and audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from portico.db import SessionDep
from portico.deps import SettingsDep
from portico.identity import invitations, members
from portico.identity.deps import CurrentMember
from portico.models import Invitation
from portico.schemas import Id
from portico.teams import audit
from portico.teams import service as teams
from portico.teams.schemas import (
    AuditEntryOut,
    AuditPage,
    InvitationCreated,
    InvitationIn,
    InvitationList,
    InvitationOut,
    MemberOut,
    RoleIn,
    TeamOut,
    TeamUpdate,
    TransferIn,
)
from portico.teams.service import MemberRow
from portico.vocabulary import AuditAction, TeamRole

router = APIRouter(prefix="/team", tags=["team"])


def member_out(row: MemberRow) -> MemberOut:
    return MemberOut(id=row.account_id, email=row.email, role=row.role, joined_at=row.joined_at)  # type: ignore[arg-type]


def invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        role=invitation.role,  # type: ignore[arg-type]
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


async def _team_out(db: SessionDep, member_id: int, team_id: int) -> TeamOut:
    member = await members.member_in(db, account_id=member_id, team_id=team_id)
    rows = await teams.list_members(db, team_id=team_id)
    return TeamOut(
        id=member.team_id,
        name=member.team_name,
        role=member.role.value,
        members=[member_out(row) for row in rows],
    )


@router.get("")
async def get_team(db: SessionDep, member: CurrentMember) -> TeamOut:
    """The token's team, your role in it, and its members."""
    return await _team_out(db, member.account_id or 0, member.team_id)


@router.patch("")
async def rename_team(body: TeamUpdate, db: SessionDep, member: CurrentMember) -> TeamOut:
    await teams.rename_team(db, member=member, name=body.name)
    return await _team_out(db, member.account_id or 0, member.team_id)


@router.delete("", status_code=204)
async def delete_team(db: SessionDep, member: CurrentMember) -> Response:
    """Delete the team (the Owner only). Its assistants stop at once for every guest (links, widget,
    API), its members lose access and their tokens for it stop (their other teams stay), and its
    assistants, Logs, Metrics and audit log are erased by the purge within the hour. An account left
    with no team gets a new, empty team of its own. This token stops working too."""
    await teams.delete_team(db, member=member)
    return Response(status_code=204)


@router.patch("/members/{member_id}")
async def change_role(member_id: Id, body: RoleIn, db: SessionDep, member: CurrentMember) -> MemberOut:
    """Make a member an admin or an editor. The Owner's role changes only by a transfer."""
    return member_out(await teams.change_role(db, member=member, account_id=member_id, role=TeamRole(body.role)))


@router.delete("/members/{member_id}", status_code=204)
async def remove_member(member_id: Id, db: SessionDep, member: CurrentMember) -> Response:
    """Remove a member (not the Owner, not yourself: leave instead). Their tokens stop at once."""
    await teams.remove_member(db, member=member, account_id=member_id)
    return Response(status_code=204)


@router.post("/leave", status_code=204)
async def leave(db: SessionDep, member: CurrentMember) -> Response:
    """Leave the team; the Owner must transfer ownership first. This token stops working."""
    await teams.leave(db, member=member)
    return Response(status_code=204)


@router.post("/transfer")
async def transfer(body: TransferIn, db: SessionDep, member: CurrentMember) -> TeamOut:
    """Make another member the Owner; you stay on as an Admin."""
    await teams.transfer_ownership(db, member=member, account_id=body.member_id)
    return await _team_out(db, member.account_id or 0, member.team_id)


@router.post("/invitations", status_code=201)
async def create_invitation(
    body: InvitationIn, db: SessionDep, member: CurrentMember, settings: SettingsDep
) -> InvitationCreated:
    """A single-use link that joins the team with this role, valid for 7 days."""
    invitation, secret = await invitations.create(db, member=member, role=TeamRole(body.role))
    return InvitationCreated(
        **invitation_out(invitation).model_dump(),
        invitation_url=invitations.invitation_url(settings.base_url, secret),
    )


@router.get("/invitations")
async def list_invitations(db: SessionDep, member: CurrentMember) -> InvitationList:
    """Invitations not used, revoked or expired yet (their links cannot be shown again)."""
    pending = await invitations.list_pending(db, team_id=member.team_id)
    return InvitationList(items=[invitation_out(invitation) for invitation in pending])


@router.delete("/invitations/{invitation_id}", status_code=204)
async def revoke_invitation(invitation_id: Id, db: SessionDep, member: CurrentMember) -> Response:
    await invitations.revoke(db, member=member, invitation_id=invitation_id)
    return Response(status_code=204)


@router.get("/audit")
async def list_audit(
    db: SessionDep,
    member: CurrentMember,
    action: AuditAction | None = None,
    member_id: Annotated[int | None, Query(alias="member", ge=1, le=2**31 - 1)] = None,
    assistant_id: Annotated[int | None, Query(alias="assistant", ge=1, le=2**31 - 1)] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Who changed what, newest first; keyset pages (pass `next_cursor` as `cursor`)."""
    entries, next_cursor = await audit.list_events(
        db,
        team_id=member.team_id,
        action=action,
        actor_id=member_id,
        assistant_id=assistant_id,
        cursor=cursor,
        limit=limit,
    )
    return AuditPage(items=[AuditEntryOut(**entry.as_dict()) for entry in entries], next_cursor=next_cursor)
