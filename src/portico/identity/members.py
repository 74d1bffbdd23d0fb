"""Who is in which team with which role: the reads that say who is asking, and the writes that
make a member (a new account's own team, an accepted invitation, the operator's `members add`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import Conflict, InvalidRequest, NotFound
from portico.identity.roles import Member
from portico.models import Membership, Owner, Team
from portico.vocabulary import TeamRole

TEAM_NAME_SENTENCE = "Give the team a name of 1 to 200 characters."


def check_team_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRequest(TEAM_NAME_SENTENCE)
    return name


def own_team_name(person: str = "") -> str:
    """A new account's own team: "John Smith's team", or "My team" when no name was given (never the
    email: the name is shown to everyone invited). The Owner can rename it on the Team page."""
    person = " ".join(person.split())[: 200 - len("'s team")]
    return f"{person}'s team" if person else "My team"


async def create_own_team(db: AsyncSession, *, account: Owner, person: str = "") -> Team:
    """The team every account has of its own (at sign-up, or when the last team it was in is deleted)."""
    return await create_team(db, account=account, name=own_team_name(person))


async def create_team(db: AsyncSession, *, account: Owner, name: str) -> Team:
    """A new team with `account` as its Owner."""
    team = Team(name=check_team_name(name))
    db.add(team)
    await db.flush()
    db.add(Membership(team_id=team.id, owner_id=account.id, role=TeamRole.OWNER))
    await db.flush()
    return team


def _member(account: Owner | None, team: Team, role: str) -> Member:
    return Member(
        account_id=account.id if account else None,
        email=account.email if account else None,
        team_id=team.id,
        team_name=team.name,
        role=TeamRole(role),
    )


async def member_in(db: AsyncSession, *, account_id: int, team_id: int) -> Member:
    """The account as a member of that team, or 404 (a team one is not in does not exist for one)."""
    row = (
        await db.execute(
            select(Owner, Team, Membership.role)
            .join(Membership, Membership.owner_id == Owner.id)
            .join(Team, Team.id == Membership.team_id)
            .where(Owner.id == account_id, Team.id == team_id, Team.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound("You are not a member of this team.")
    return _member(row[0], row[1], row[2])


async def first_team(db: AsyncSession, *, account_id: int) -> Member | None:
    row = (
        await db.execute(
            select(Owner, Team, Membership.role)
            .join(Membership, Membership.owner_id == Owner.id)
            .join(Team, Team.id == Membership.team_id)
            .where(Owner.id == account_id, Team.deleted_at.is_(None))
            .order_by(Membership.id)
            .limit(1)
        )
    ).first()
    return _member(row[0], row[1], row[2]) if row else None


async def teams_of(db: AsyncSession, *, account_id: int) -> list[tuple[int, str, str]]:
    """(team id, name, role) of every team the account is in, for the switcher."""
    query = (
        select(Team.id, Team.name, Membership.role)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.owner_id == account_id, Team.deleted_at.is_(None))
        .order_by(Team.name, Team.id)
    )
    return [(row.id, row.name, row.role) for row in await db.execute(query)]


async def add_member(db: AsyncSession, *, team_id: int, account_id: int, role: TeamRole) -> None:
    """Insert a membership (an accepted invitation, or the operator's `portico members add`)."""
    if role == TeamRole.OWNER:
        raise InvalidRequest("A team has one Owner; add the member as admin or editor, then transfer ownership.")
    exists = await db.scalar(
        select(Membership.id).where(Membership.team_id == team_id, Membership.owner_id == account_id)
    )
    if exists is not None:
        raise Conflict("This account is already a member of the team.")
    db.add(Membership(team_id=team_id, owner_id=account_id, role=role))
    await db.flush()
