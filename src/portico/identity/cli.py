"""`portico owners` and `portico tokens`: the operator creates accounts and API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from portico.commands import find_owner, own_team, run
from portico.config import Settings
from portico.identity import accounts, tokens
from portico.models import Owner

owners_app = typer.Typer(no_args_is_help=True, help="Owners (people who build assistants).")
tokens_app = typer.Typer(no_args_is_help=True, help="Owners' API tokens.")


@owners_app.command("create")
def owners_create(
    email: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    name: Annotated[str, typer.Option(help="The person's name, for their team: \"Ada Lovelace's team\".")] = "",
) -> None:
    """Add an owner."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(db: AsyncSession, _config: Settings) -> Owner:
        return await accounts.create_owner(db, email=email, password=password, name=name)

    owner = run(work)
    typer.echo(f"Created owner {owner.email}.")


@tokens_app.command("create")
def tokens_create(
    owner: Annotated[str, typer.Option(help="The owner's email.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token; prints only the token."""

    async def work(db: AsyncSession, _config: Settings) -> str:
        _token, plain = await tokens.create_api_token(
            db, member=await own_team(db, await find_owner(db, owner)), name=name
        )
        return plain

    typer.echo(run(work))
