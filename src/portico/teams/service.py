"""Teams: starting, renaming and deleting one, and changing who is in it (roles, removals, leaving,
transfers), each written to the audit log. Who is asking and the reads behind it are identity's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from portico.chat import lifecycle
from portico.errors import Conflict, InvalidRequest, NotFound
from portico.identity import audit, invitations, signin, tokens
from portico.identity.members import check_team_name, create_own_team, create_team
from portico.identity.roles import Action, Member, require
from portico.models import Assistant, Membership, Owner, Team, utcnow
from portico.vocabulary import AuditAction, TeamRole

log = logging.getLogger(__name__)


class MemberNotFound(NotFound):
    message = "This team has no member with this id."


class OwnerStays(Conflict):
    code = "owner_stays"
    message = "The Owner stays in the team with the Owner role: transfer ownership to another member first."


class CannotRemoveSelf(Conflict):
    code = "cannot_remove_self"
    message = "You cannot remove yourself; leave the team instead."


@dataclass(frozen=True)
class MemberRow:
    account_id: int
    email: str
    role: str
    joined_at: datetime


MAX_OWNED_TEAMS = 50


class TooManyTeams(Conflict):
    code = "too_many_teams"
    message = f"An account can own at most {MAX_OWNED_TEAMS} teams; delete one or transfer it first."


async def start_team(db: AsyncSession, *, account_id: int, name: str) -> Team:
    """Another team, with the account as its Owner (the dashboard's "Start a new team")."""
    name = check_team_name(name)
    owned = await db.scalar(
        select(func.count())
        .select_from(Membership)
        .join(Team, Team.id == Membership.team_id)
        .where(Membership.owner_id == account_id, Membership.role == TeamRole.OWNER, Team.deleted_at.is_(None))
    )
    if (owned or 0) >= MAX_OWNED_TEAMS:
        raise TooManyTeams()
    account = await db.get(Owner, account_id)
    if account is None:
        raise NotFound("This account no longer exists.")
    return await create_team(db, account=account, name=name)


async def find_team(db: AsyncSession, ref: str) -> Team:
    """A team by id or by exact name (the CLI's `--team`); a name shared by two teams is refused."""
    if ref.isdigit():
        team = await db.get(Team, int(ref))
        if team is not None and team.deleted_at is None:
            return team
    teams = list(await db.scalars(select(Team).where(Team.name == ref, Team.deleted_at.is_(None)).limit(2)))
    if not teams:
        raise NotFound(f"No team with the id or name '{ref}'.")
    if len(teams) > 1:
        raise Conflict(f"Several teams are named '{ref}'; give the team's id instead.")
    return teams[0]


async def list_teams(db: AsyncSession) -> list[tuple[int, str, str, int, int]]:
    """(id, name, Owner's email, members, assistants) of every team not deleted, for the operator."""
    members = select(func.count()).select_from(Membership).where(Membership.team_id == Team.id).scalar_subquery()
    assistants = (
        select(func.count())
        .select_from(Assistant)
        .where(Assistant.team_id == Team.id, Assistant.deleted_at.is_(None))
        .scalar_subquery()
    )
    owner = aliased(Membership)
    query = (
        select(Team.id, Team.name, Owner.email, members, assistants)
        .join(owner, (owner.team_id == Team.id) & (owner.role == TeamRole.OWNER))
        .join(Owner, Owner.id == owner.owner_id)
        .where(Team.deleted_at.is_(None))
        .order_by(Team.id)
    )
    return [(row[0], row[1], row[2], row[3], row[4]) for row in await db.execute(query)]


async def list_members(db: AsyncSession, *, team_id: int) -> list[MemberRow]:
    query = (
        select(Owner.id, Owner.email, Membership.role, Membership.created_at)
        .join(Membership, Membership.owner_id == Owner.id)
        .where(Membership.team_id == team_id)
        .order_by(Membership.id)
    )
    return [MemberRow(account_id=r[0], email=r[1], role=r[2], joined_at=r[3]) for r in await db.execute(query)]


async def change_role(db: AsyncSession, *, member: Member, account_id: int, role: TeamRole) -> MemberRow:
    require(member, Action.MANAGE_MEMBERS)
    if role == TeamRole.OWNER:
        raise InvalidRequest("To make someone the Owner, transfer ownership to them.")
    # Read under the row's lock, so a second Admin's change waits for the first and sees its role.
    held = select(Membership.role).where(Membership.team_id == member.team_id, Membership.owner_id == account_id)
    if await db.scalar(held.with_for_update()) == role:
        return await _row(db, team_id=member.team_id, account_id=account_id)  # unchanged: no entry
    # One conditional UPDATE: two Admins changing one member at once both apply, the last wins,
    # and the Owner's row is never touched.
    changed: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        update(Membership)
        .where(
            Membership.team_id == member.team_id,
            Membership.owner_id == account_id,
            Membership.role != TeamRole.OWNER,
        )
        .values(role=role)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount == 0:
        await _explain_missing(db, team_id=member.team_id, account_id=account_id)
    await audit.record(db, member=member, action=AuditAction.MEMBER_ROLE, email=await _email(db, account_id), role=role)
    return await _row(db, team_id=member.team_id, account_id=account_id)


async def remove_member(db: AsyncSession, *, member: Member, account_id: int) -> None:
    require(member, Action.MANAGE_MEMBERS)
    if account_id == member.account_id:
        raise CannotRemoveSelf()
    email = await _email(db, account_id)
    await _drop(db, team_id=member.team_id, account_id=account_id)
    await audit.record(db, member=member, action=AuditAction.MEMBER_REMOVED, email=email)


async def leave(db: AsyncSession, *, member: Member) -> None:
    if member.role == TeamRole.OWNER or member.account_id is None:
        raise OwnerStays("The Owner cannot leave the team: transfer ownership to another member first.")
    await _drop(db, team_id=member.team_id, account_id=member.account_id)
    await audit.record(db, member=member, action=AuditAction.MEMBER_LEFT, email=member.email)


async def _drop(db: AsyncSession, *, team_id: int, account_id: int) -> None:
    dropped: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        delete(Membership)
        .where(Membership.team_id == team_id, Membership.owner_id == account_id, Membership.role != TeamRole.OWNER)
        .execution_options(synchronize_session=False)
    )
    if dropped.rowcount == 0:
        await _explain_missing(db, team_id=team_id, account_id=account_id)
    await tokens.revoke_member_tokens(db, team_id=team_id, account_id=account_id)
    await signin.forget_team(db, team_id=team_id, account_id=account_id)


async def transfer_ownership(db: AsyncSession, *, member: Member, account_id: int) -> None:
    """The Owner hands the team to another member and stays on as an Admin."""
    require(member, Action.OWN_TEAM)
    if account_id == member.account_id:
        raise InvalidRequest("You already own this team; choose another member.")
    target = await db.scalar(
        select(Membership).where(Membership.team_id == member.team_id, Membership.owner_id == account_id)
    )
    if target is None:
        raise MemberNotFound()
    # Demote first: the schema allows one Owner per team at any moment.
    await db.execute(
        update(Membership)
        .where(Membership.team_id == member.team_id, Membership.role == TeamRole.OWNER)
        .values(role=TeamRole.ADMIN)
        .execution_options(synchronize_session=False)
    )
    await db.execute(
        update(Membership)
        .where(Membership.id == target.id)
        .values(role=TeamRole.OWNER)
        .execution_options(synchronize_session=False)
    )
    await audit.record(db, member=member, action=AuditAction.OWNERSHIP_TRANSFERRED, email=await _email(db, account_id))


async def rename_team(db: AsyncSession, *, member: Member, name: str) -> Team:
    require(member, Action.OWN_TEAM)
    name = check_team_name(name)
    team = await db.get(Team, member.team_id)
    if team is None:
        raise NotFound("This team no longer exists.")
    if name == team.name:
        return team  # nothing changes, nothing to record
    old, team.name = team.name, name
    await db.flush()
    await audit.record(db, member=member, action=AuditAction.TEAM_RENAMED, old=old, name=name)
    return team


@dataclass(frozen=True)
class DeletedTeam:
    name: str
    assistants: int
    members: int


async def delete_team(db: AsyncSession, *, member: Member) -> DeletedTeam:
    """The Owner deletes the team: guests of its assistants are cut off at once, its members are out
    (their tokens for it stop, their other teams stay), and the purge erases it later.

    An account left with no team gets a new team of its own, as at sign-up: every account has one.
    """
    require(member, Action.OWN_TEAM)
    now = utcnow()
    # One conditional UPDATE marks it: of two deletions at once, one goes on, the other finds it gone.
    marked: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        update(Team)
        .where(Team.id == member.team_id, Team.deleted_at.is_(None))
        .values(deleted_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount == 0:
        raise NotFound("This team no longer exists.")
    team_id = member.team_id
    assistant_ids = list(
        await db.scalars(select(Assistant.id).where(Assistant.team_id == team_id, Assistant.deleted_at.is_(None)))
    )
    if assistant_ids:
        await db.execute(
            update(Assistant)
            .where(Assistant.id.in_(assistant_ids))
            .values(deleted_at=now)
            .execution_options(synchronize_session=False)
        )
    for assistant_id in assistant_ids:
        await lifecycle.assistant_deleted(db, assistant_id=assistant_id)
    accounts = list(await db.scalars(select(Membership.owner_id).where(Membership.team_id == team_id)))
    await db.execute(
        delete(Membership).where(Membership.team_id == team_id).execution_options(synchronize_session=False)
    )
    # Tokens for the team stop because their member is gone (member_for_token); they are not
    # updated here: a request of another member holds its own token's row while it waits for this
    # team's rows, and revoking it here would be a deadlock on PostgreSQL.
    await signin.forget_team(db, team_id=team_id)
    await invitations.revoke_pending(db, team_id=team_id, at=now)
    left_with_none = select(Owner).where(Owner.id.in_(accounts), ~exists().where(Membership.owner_id == Owner.id))
    for account in await db.scalars(left_with_none):
        await create_own_team(db, account=account)
    # The team's own audit log goes with it; the operator's log keeps who deleted what (ids only).
    log.info(
        "team %s deleted by account %s: %s assistants cut off, %s members out",
        team_id,
        member.account_id if member.account_id is not None else "operator",
        len(assistant_ids),
        len(accounts),
    )
    return DeletedTeam(name=member.team_name, assistants=len(assistant_ids), members=len(accounts))


async def count_assistants(db: AsyncSession, *, team_id: int) -> int:
    """The team's assistants, said before deleting it takes them away."""
    count = await db.scalar(
        select(func.count()).select_from(Assistant).where(Assistant.team_id == team_id, Assistant.deleted_at.is_(None))
    )
    return count or 0


async def _explain_missing(db: AsyncSession, *, team_id: int, account_id: int) -> None:
    role = await db.scalar(
        select(Membership.role).where(Membership.team_id == team_id, Membership.owner_id == account_id)
    )
    if role == TeamRole.OWNER:
        raise OwnerStays()
    raise MemberNotFound()


async def _email(db: AsyncSession, account_id: int) -> str | None:
    return await db.scalar(select(Owner.email).where(Owner.id == account_id))


async def _row(db: AsyncSession, *, team_id: int, account_id: int) -> MemberRow:
    rows = [row for row in await list_members(db, team_id=team_id) if row.account_id == account_id]
    if not rows:
        raise MemberNotFound()
    return rows[0]
