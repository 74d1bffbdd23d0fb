"""What every `portico` command shares: one transaction on a migrated database, errors as one
sentence on stderr with exit code 1, and finding an assistant or an owner by what a person types."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.config import Settings, SettingsError, load_settings
from portico.db import make_engine, make_sessionmaker
from portico.errors import NotFound, PorticoError
from portico.identity import accounts, members
from portico.identity.roles import Member
from portico.kit.crypto import Vault
from portico.migrations.run import upgrade_connection
from portico.models import Assistant, Owner
from portico.web.forms import sentence

T = TypeVar("T")


class CliError(Exception):
    pass


def fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


def run(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run `work` in one transaction on a migrated database; domain errors become one line."""
    config = settings()

    async def main() -> T:
        engine = make_engine(config.resolved_database_url)
        try:
            if config.resolved_database_url.startswith("sqlite"):
                config.data_dir.mkdir(parents=True, exist_ok=True)
                async with engine.begin() as conn:
                    await conn.run_sync(upgrade_connection)
            async with make_sessionmaker(engine)() as db:
                result = await work(db, config)
                await db.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (PorticoError, CliError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach the database ({exc.strerror or exc}).") from None


async def find_assistant(db: AsyncSession, ref: str) -> Assistant:
    """An assistant by its id or its public id."""
    condition = Assistant.public_id == ref
    if ref.isdigit():
        condition = or_(condition, Assistant.id == int(ref))
    query = select(Assistant).options(undefer(Assistant.draft)).where(condition, Assistant.deleted_at.is_(None))
    assistant = await db.scalar(query)
    if assistant is None:
        raise NotFound(f"No assistant with id or public id '{ref}'.")
    return assistant


async def find_owner(db: AsyncSession, email: str | None) -> Owner:
    if email:
        owner = await accounts.get_owner_by_email(db, email)
        if owner is None:
            raise NotFound(f"No owner with the email {email}.")
        return owner
    owners = list(await db.scalars(select(Owner).limit(2)))
    if len(owners) != 1:
        raise CliError("Say which owner with --owner EMAIL.")
    return owners[0]


def vault(config: Settings) -> Vault:
    return Vault(config.resolved_secret_key())


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    # The dashboard's sentences about the field, not the validation library's.
    said = sentence(error, str(error["loc"][-1]) if error["loc"] else "")
    return f"{where}: {said}" if where else said


async def own_team(db: AsyncSession, owner: Owner) -> Member:
    """The account in its first team (its own, unless it left): where its CLI tokens and assistants go."""
    member = await members.first_team(db, account_id=owner.id)
    if member is None:
        raise CliError(f"{owner.email} is in no team; add them with `portico members add`.")
    return member


def operator(assistant: Assistant) -> Member:
    """The operator acts with the Owner's rights; the audit log names them as the command line."""
    return Member.operator(team_id=assistant.team_id)
