"""Invitations without email: a single-use secret in a URL fragment, stored as a digest, 7 days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import Conflict, InvalidRequest, NotFound, PorticoError
from portico.identity import audit, members
from portico.identity.roles import Action, Member, require
from portico.kit.crypto import digest, is_well_formed, new_token
from portico.models import Invitation, Membership, Owner, Team, utcnow
from portico.vocabulary import TEAM_ROLE_LABELS, AuditAction, TeamRole

PREFIX = "pti_"
LIFETIME = timedelta(days=7)


class InvitationInvalid(NotFound):
    code = "invitation_invalid"
    message = "This invitation link is not valid. Check that you copied all of it, or ask for a new one."


class InvitationUsed(Conflict):
    code = "invitation_used"
    message = "This invitation has already been used. Ask for a new one."


class InvitationEnded(PorticoError):
    status = 410
    code = "invitation_expired"
    message = "This invitation has expired. Ask for a new one."


class InvitationRevoked(InvitationEnded):
    code = "invitation_revoked"
    message = "This invitation was withdrawn. Ask for a new one."


class AlreadyMember(Conflict):
    code = "already_member"
    message = "You are already a member of this team."


def invitation_url(base_url: str, secret: str) -> str:
    # The secret rides in the fragment, which browsers never send to a server (like private keys).
    return f"{base_url}/dashboard/join#i={secret}"


async def create(db: AsyncSession, *, member: Member, role: TeamRole) -> tuple[Invitation, str]:
    """A new invitation and its secret, which exists only in this return value."""
    require(member, Action.MANAGE_MEMBERS)
    if role == TeamRole.OWNER:
        raise InvalidRequest("Invite an admin or an editor; ownership moves only by a transfer.")
    secret = new_token(PREFIX)
    invitation = Invitation(
        team_id=member.team_id,
        role=role,
        digest=digest(secret),
        created_by=member.account_id,
        expires_at=utcnow() + LIFETIME,
    )
    db.add(invitation)
    await db.flush()
    await audit.record(db, member=member, action=AuditAction.MEMBER_INVITED, role=role, invitation=invitation.id)
    return invitation, secret


async def list_pending(db: AsyncSession, *, team_id: int) -> list[Invitation]:
    query = (
        select(Invitation)
        .where(
            Invitation.team_id == team_id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.id.desc())
    )
    return list(await db.scalars(query))


async def revoke(db: AsyncSession, *, member: Member, invitation_id: int) -> None:
    require(member, Action.MANAGE_MEMBERS)
    revoked: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.team_id == member.team_id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if revoked.rowcount == 0:
        raise NotFound("This team has no unused invitation with this id.")
    await audit.record(db, member=member, action=AuditAction.INVITATION_REVOKED, invitation=invitation_id)


async def revoke_pending(db: AsyncSession, *, team_id: int, at: datetime) -> None:
    """Every unused invitation of a team being deleted stops working."""
    await db.execute(
        update(Invitation)
        .where(Invitation.team_id == team_id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )


async def check(db: AsyncSession, *, secret: str) -> Invitation:
    """The invitation, if it can still be used; otherwise the refusal that says why."""
    secret = secret.strip()
    if not is_well_formed(secret, PREFIX):
        raise InvitationInvalid()
    invitation = await db.scalar(select(Invitation).where(Invitation.digest == digest(secret)))
    if invitation is None:
        raise InvitationInvalid()
    if invitation.revoked_at is not None:
        raise InvitationRevoked()
    if invitation.used_at is not None:
        raise InvitationUsed()
    if invitation.expires_at <= utcnow():
        raise InvitationEnded()
    return invitation


async def describe(db: AsyncSession, *, secret: str) -> str:
    """What the join page says an invitation offers: "Join Physics department as Editor"."""
    invitation = await check(db, secret=secret)
    team_name = await db.scalar(select(Team.name).where(Team.id == invitation.team_id))
    return f"Join {team_name} as {TEAM_ROLE_LABELS[TeamRole(invitation.role)]}"


async def accept(db: AsyncSession, *, account: Owner, secret: str) -> Member:
    """Join the invitation's team. A refusal leaves the invitation unused."""
    invitation = await check(db, secret=secret)
    already = await db.scalar(
        select(Membership.id).where(Membership.team_id == invitation.team_id, Membership.owner_id == account.id)
    )
    if already is not None:
        raise AlreadyMember()
    # The use is taken with one conditional UPDATE, so two people racing on one link: one joins.
    used: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(used_at=utcnow(), used_by=account.id)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount == 0:
        raise InvitationUsed()
    await members.add_member(db, team_id=invitation.team_id, account_id=account.id, role=TeamRole(invitation.role))
    team = await db.get(Team, invitation.team_id)
    assert team is not None
    member = Member(
        account_id=account.id,
        email=account.email,
        team_id=team.id,
        team_name=team.name,
        role=TeamRole(invitation.role),
    )
    await audit.record(db, member=member, action=AuditAction.MEMBER_JOINED, email=account.email, role=invitation.role)
    return member
