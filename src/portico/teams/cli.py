"""`portico members` and `portico teams`: the operator adds accounts to teams, as an accepted
invitation would, lists teams and deletes one, as its Owner would."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from portico.commands import find_owner, run
from portico.config import Settings
from portico.identity import audit, members
from portico.identity.roles import Member
from portico.kit.spreadsheet import safe_cell
from portico.teams import service as teams_service
from portico.vocabulary import AuditAction, TeamRole

members_app = typer.Typer(no_args_is_help=True, help="Team members (who may work on a team's assistants).")
teams_app = typer.Typer(no_args_is_help=True, help="Teams (who owns assistants).")


@members_app.command("add")
def members_add(
    email: str,
    team: Annotated[str, typer.Option(help="The team's id or exact name.")],
    role: Annotated[TeamRole, typer.Option(help="admin or editor (ownership moves by a transfer).")],
) -> None:
    """Add an existing account to a team with a role."""

    async def work(db: AsyncSession, _config: Settings) -> str:
        account = await find_owner(db, email)
        found = await teams_service.find_team(db, team)
        await members.add_member(db, team_id=found.id, account_id=account.id, role=role)
        await audit.record(
            db,
            member=Member.operator(team_id=found.id, team_name=found.name),
            action=AuditAction.MEMBER_JOINED,
            email=account.email,
            role=role,
        )
        return found.name

    typer.echo(f"{email} is now {role.value} of the team {run(work)}.")


@members_app.command("list")
def members_list(team: Annotated[str, typer.Option(help="The team's id or exact name.")]) -> None:
    """A team's members as CSV: account id, email, role, joined."""

    async def work(db: AsyncSession, _config: Settings) -> list[teams_service.MemberRow]:
        found = await teams_service.find_team(db, team)
        return await teams_service.list_members(db, team_id=found.id)

    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "email", "role", "joined_at"])
    for row in run(work):
        writer.writerow([row.account_id, row.email, row.role, row.joined_at.isoformat()])


@teams_app.command("list")
def teams_list() -> None:
    """Every team as CSV: id, name, Owner's email, members, assistants."""

    async def work(db: AsyncSession, _config: Settings) -> list[tuple[int, str, str, int, int]]:
        return await teams_service.list_teams(db)

    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "name", "owner", "members", "assistants"])
    for row in run(work):
        writer.writerow([safe_cell(value) for value in row])


@teams_app.command("delete")
def teams_delete(
    team: Annotated[str, typer.Argument(help="The team's id or exact name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a team as its Owner would: its assistants stop at once, the purge erases them later."""

    async def counts(db: AsyncSession, _config: Settings) -> tuple[str, int, int]:
        found = await teams_service.find_team(db, team)
        members = await teams_service.list_members(db, team_id=found.id)
        return found.name, await teams_service.count_assistants(db, team_id=found.id), len(members)

    name, assistants, members = run(counts)
    if not yes:
        typer.confirm(
            f"Delete the team {name}: {assistants} assistants stop answering at once, {members} members lose access?",
            abort=True,
        )

    async def work(db: AsyncSession, _config: Settings) -> teams_service.DeletedTeam:
        found = await teams_service.find_team(db, team)
        return await teams_service.delete_team(db, member=Member.operator(team_id=found.id, team_name=found.name))

    deleted = run(work)
    typer.echo(
        f"Deleted the team {deleted.name}: {deleted.assistants} assistants cut off, {deleted.members} members out; "
        "the purge erases it within the hour."
    )
