"""The `portico` command. Errors go to stderr as one sentence, with exit code 1."""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.access import links as links_service
from portico.access.csv_import import parse_link_rows
from portico.access.schemas import LinkIn
from portico.assistants import service as assistants_service
from portico.assistants.schemas import AssistantCreate, AssistantUpdate, Quotas
from portico.config import Settings, SettingsError, load_settings
from portico.db import make_engine, make_sessionmaker
from portico.errors import InvalidRequest, NotFound, PorticoError
from portico.kit.crypto import Vault
from portico.migrations.run import upgrade_connection
from portico.models import Assistant, Membership, Owner
from portico.owners import service as owners_service
from portico.teams import audit
from portico.teams import service as teams_service
from portico.teams.roles import Member
from portico.vocabulary import AuditAction, Channel, ShareMode, Status, TeamRole

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Portico: publish AI assistants.")
db_app = typer.Typer(no_args_is_help=True, help="The database.")
owners_app = typer.Typer(no_args_is_help=True, help="Owners (people who build assistants).")
tokens_app = typer.Typer(no_args_is_help=True, help="Owners' API tokens.")
assistants_app = typer.Typer(no_args_is_help=True, help="Assistants.")
links_app = typer.Typer(no_args_is_help=True, help="Private links (the Users of an assistant).")
logs_app = typer.Typer(no_args_is_help=True, help="Logs: the sessions of an assistant.")
members_app = typer.Typer(no_args_is_help=True, help="Team members (who may work on a team's assistants).")
app.add_typer(db_app, name="db")
app.add_typer(owners_app, name="owners")
app.add_typer(tokens_app, name="tokens")
app.add_typer(assistants_app, name="assistants")
app.add_typer(links_app, name="links")
app.add_typer(logs_app, name="logs")
app.add_typer(members_app, name="members")

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
        owner = await owners_service.get_owner_by_email(db, email)
        if owner is None:
            raise NotFound(f"No owner with the email {email}.")
        return owner
    owners = list(await db.scalars(select(Owner).limit(2)))
    if len(owners) != 1:
        raise CliError("Say which owner with --owner EMAIL.")
    return owners[0]


async def own_team(db: AsyncSession, owner: Owner) -> Member:
    """The account in its first team (its own, unless it left): where its CLI tokens and assistants go."""
    member = await teams_service.first_team(db, account_id=owner.id)
    if member is None:
        raise CliError(f"{owner.email} is in no team; add them with `portico members add`.")
    return member


def operator(assistant: Assistant) -> Member:
    """The operator acts with the Owner's rights; the audit log names them as the command line."""
    return Member.operator(team_id=assistant.team_id)


def vault(config: Settings) -> Vault:
    return Vault(config.resolved_secret_key())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only).")] = 1,
) -> None:
    """Serve the dashboard, the chat pages and the API."""
    import uvicorn

    config = settings()
    problem = asyncio.run(database_problem(config.resolved_database_url, wait=config.startup_wait))
    if problem is not None:
        typer.echo(f"error: the database does not answer after {config.startup_wait:g} s: {problem}", err=True)
        raise typer.Exit(1)
    uvicorn.run(
        "portico.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=config.log_level,
        access_log=config.access_log,
        # Portico reads X-Forwarded-For itself, and only from PORTICO_TRUSTED_PROXIES (kit/net.py):
        # uvicorn's own trusts loopback by default, so anything on the machine chose its address.
        proxy_headers=False,
        # Beyond this many connections and requests at once, uvicorn answers 503 (PORTICO_MAX_CONNECTIONS).
        limit_concurrency=config.max_connections,
        # Headers that trickle in are cut off after PORTICO_REQUEST_TIMEOUT (slowloris).
        http="portico.serving:HeadersOnTime",
    )


async def database_problem(url: str, *, wait: float) -> str | None:
    """Why the database cannot be reached (its error's kind and text, never the URL's password),
    after trying for up to `wait` seconds; None once it answers."""
    from sqlalchemy import text

    engine = make_engine(url)
    deadline = asyncio.get_running_loop().time() + wait
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return None
            except Exception as exc:  # noqa: BLE001 - any failure to answer is reported, by kind
                problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if asyncio.get_running_loop().time() >= deadline:
                return problem
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


@app.command()
def demo() -> None:
    """Seed a demo owner and a demo assistant on first run, and say what to open."""
    from portico.demo import seed_demo

    info = run(seed_demo)
    typer.echo(info)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration the database does not have yet."""
    config = settings()

    async def main() -> None:
        engine = make_engine(config.resolved_database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(upgrade_connection)
        finally:
            await engine.dispose()

    if config.resolved_database_url.startswith("sqlite"):
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        asyncio.run(main())
    except OSError as exc:
        raise fail(f"cannot reach the database ({exc.strerror or exc}).") from None
    typer.echo("Database is up to date.")


@owners_app.command("create")
def owners_create(
    email: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Add an owner."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(db: AsyncSession, _config: Settings) -> Owner:
        return await owners_service.create_owner(db, email=email, password=password)

    owner = run(work)
    typer.echo(f"Created owner {owner.email}.")


@tokens_app.command("create")
def tokens_create(
    owner: Annotated[str, typer.Option(help="The owner's email.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token; prints only the token."""

    async def work(db: AsyncSession, _config: Settings) -> str:
        _token, plain = await owners_service.create_api_token(
            db, member=await own_team(db, await find_owner(db, owner)), name=name
        )
        return plain

    typer.echo(run(work))


@assistants_app.command("list")
def assistants_list(owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None) -> None:
    """List assistants: id, public id, status, share mode, published version, name."""

    async def work(db: AsyncSession, _config: Settings) -> list[Assistant]:
        query = select(Assistant).where(Assistant.deleted_at.is_(None)).order_by(Assistant.id)
        if owner:
            teams = select(Membership.team_id).where(Membership.owner_id == (await find_owner(db, owner)).id)
            query = query.where(Assistant.team_id.in_(teams))
        return list(await db.scalars(query))

    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "public_id", "status", "share_mode", "published_version", "name"])
    for a in run(work):
        writer.writerow([a.id, a.public_id, a.status, a.share_mode, a.published_version or "", a.name])


@assistants_app.command("create")
def assistants_create(
    name: Annotated[str, typer.Option(help="The assistant's name.")],
    owner: Annotated[str | None, typer.Option(help="The owner's email (optional with one owner).")] = None,
    description: Annotated[str, typer.Option(help="One line shown to guests.")] = "",
    instructions: Annotated[str | None, typer.Option(help="Instructions for the engine.")] = None,
    greeting: Annotated[str | None, typer.Option(help="Sent at the start of each session.")] = None,
    knowledge_file: Annotated[Path | None, typer.Option(help="A text file of knowledge.", exists=True)] = None,
) -> None:
    """Create an assistant (unpublished, offline, public); prints its id and public id."""
    try:
        knowledge = knowledge_file.read_text(encoding="utf-8") if knowledge_file else None
    except UnicodeDecodeError:
        raise fail(f"{knowledge_file} is not UTF-8 text; save it as plain text (UTF-8).") from None
    try:
        data = AssistantCreate(
            name=name, description=description, instructions=instructions, greeting=greeting, knowledge=knowledge
        )
    except ValidationError as exc:
        raise fail(_first_error(exc)) from None

    async def work(db: AsyncSession, config: Settings) -> Assistant:
        who = await find_owner(db, owner)
        member = await own_team(db, who)
        return await assistants_service.create_assistant(db, member=member, data=data, vault=vault(config))

    assistant = run(work)
    typer.echo(f"{assistant.id},{assistant.public_id}")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


@assistants_app.command("publish")
def assistants_publish(assistant: str) -> None:
    """Publish the draft as a new version."""

    async def work(db: AsyncSession, _config: Settings) -> int:
        found = await find_assistant(db, assistant)
        version = await assistants_service.publish(db, member=operator(found), assistant=found)
        return version.number

    typer.echo(f"Published version {run(work)}.")


@assistants_app.command("delete")
def assistants_delete(assistant: str) -> None:
    """Delete an assistant: its links and sessions stop at once."""

    async def work(db: AsyncSession, _config: Settings) -> None:
        found = await find_assistant(db, assistant)
        await assistants_service.delete_assistant(db, member=operator(found), assistant=found)

    run(work)
    typer.echo("Deleted.")


@assistants_app.command("quotas")
def assistants_quotas(
    assistant: str,
    messages_per_session: Annotated[int | None, typer.Option(help="Guest messages per session.")] = None,
    sessions_per_day: Annotated[int | None, typer.Option(help="Guest sessions per UTC day.")] = None,
    tokens_per_day: Annotated[int | None, typer.Option(help="Reply tokens per UTC day.")] = None,
) -> None:
    """Set an assistant's quotas, at once (0 = unlimited); prints them all."""
    given = {"messages_per_session": messages_per_session, "sessions_per_day": sessions_per_day}
    given["tokens_per_day"] = tokens_per_day
    try:
        data = AssistantUpdate(quotas=Quotas(**{name: value for name, value in given.items() if value is not None}))
    except ValidationError as exc:
        raise fail(_first_error(exc)) from None

    async def work(db: AsyncSession, config: Settings) -> Assistant:
        found = await find_assistant(db, assistant)
        return await assistants_service.update_assistant(
            db, member=operator(found), assistant=found, data=data, vault=vault(config)
        )

    updated = run(work)
    typer.echo(
        f"messages_per_session={updated.messages_per_session} sessions_per_day={updated.sessions_per_day} "
        f"tokens_per_day={updated.tokens_per_day}"
    )


@app.command()
def status(assistant: str, value: Status) -> None:
    """Switch an assistant live or offline."""

    async def work(db: AsyncSession, _config: Settings) -> None:
        found = await find_assistant(db, assistant)
        await assistants_service.set_status(db, member=operator(found), assistant=found, status=value)

    run(work)
    typer.echo(f"Assistant is {value.value}.")


@app.command()
def share(assistant: str, mode: ShareMode) -> None:
    """Switch an assistant's share mode."""

    async def work(db: AsyncSession, _config: Settings) -> None:
        found = await find_assistant(db, assistant)
        await assistants_service.set_share_mode(db, member=operator(found), assistant=found, mode=mode)

    run(work)
    typer.echo(f"Share mode is {mode.value}.")


def _read_link_file(path: Path) -> list[LinkIn]:
    """One name per line, or CSV rows of name,max_sessions (a header row is allowed)."""
    try:
        return parse_link_rows(path.read_text(encoding="utf-8"), source=f"{path}, line")
    except InvalidRequest as exc:
        raise fail(exc.message) from None


@links_app.command("create")
def links_create(
    assistant: str,
    name: Annotated[str | None, typer.Option(help="The user's or group's name.")] = None,
    max_sessions: Annotated[int, typer.Option(help="Cap on sessions; 0 = unlimited.")] = 0,
    from_file: Annotated[Path | None, typer.Option(help="Names, one per line, or CSV name,max_sessions.")] = None,
) -> None:
    """Create private links; prints CSV name,url."""
    if name is not None and from_file is None:
        try:
            items = [LinkIn(name=name, max_sessions=max_sessions)]
        except ValidationError as exc:
            raise fail(_first_error(exc)) from None
    elif from_file is not None and name is None:
        if not from_file.is_file():
            raise fail(f"{from_file} is not a file.")
        items = _read_link_file(from_file)
    else:
        raise fail("give either --name or --from-file.")

    async def work(db: AsyncSession, config: Settings) -> list[tuple[str, str]]:
        found = await find_assistant(db, assistant)
        created = await links_service.create_links(
            db,
            member=operator(found),
            assistant=found,
            items=items,
            limit=config.max_private_links,
            vault=vault(config),
        )
        outs = [links_service.link_out(link, vault=vault(config), base_url=config.base_url) for link in created]
        return [(out.name, out.url) for out in outs]

    rows = run(work)
    writer = csv.writer(sys.stdout)
    writer.writerow(["name", "url"])
    writer.writerows(rows)


@links_app.command("list")
def links_list(assistant: str) -> None:
    """List an assistant's active private links as CSV."""

    async def work(db: AsyncSession, config: Settings) -> list[list[object]]:
        found = await find_assistant(db, assistant)
        links = await links_service.list_links(db, assistant=found)
        outs = [links_service.link_out(link, vault=vault(config), base_url=config.base_url) for link in links]
        return [
            [o.id, o.name, o.max_sessions, o.sessions_used, o.last_used_at.isoformat() if o.last_used_at else "", o.url]
            for o in outs
        ]

    rows = run(work)
    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "name", "max_sessions", "sessions_used", "last_used_at", "url"])
    writer.writerows(rows)


@links_app.command("delete")
def links_delete(assistant: str, link_id: int) -> None:
    """Delete (revoke) a private link at once."""

    async def work(db: AsyncSession, _config: Settings) -> None:
        found = await find_assistant(db, assistant)
        await links_service.delete_link(db, member=operator(found), assistant=found, link_id=link_id)

    run(work)
    typer.echo("Deleted: the link no longer works.")


@links_app.command("reissue")
def links_reissue(assistant: str, link_id: int) -> None:
    """Give a private link a new key; the old one stops working. Prints the new URL."""

    async def work(db: AsyncSession, config: Settings) -> str:
        found = await find_assistant(db, assistant)
        link = await links_service.reissue_link(
            db, member=operator(found), assistant=found, link_id=link_id, vault=vault(config)
        )
        return links_service.link_out(link, vault=vault(config), base_url=config.base_url).url

    typer.echo(run(work))


@members_app.command("add")
def members_add(
    email: str,
    team: Annotated[str, typer.Option(help="The team's id or exact name.")],
    role: Annotated[TeamRole, typer.Option(help="admin or editor (ownership moves by a transfer).")],
) -> None:
    """Add an existing account to a team with a role, as an accepted invitation would."""

    async def work(db: AsyncSession, _config: Settings) -> str:
        account = await find_owner(db, email)
        found = await teams_service.find_team(db, team)
        await teams_service.add_member(db, team_id=found.id, account_id=account.id, role=role)
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


@logs_app.command("export")
def logs_export(
    assistant: str,
    format: Annotated[
        str, typer.Option("--format", help="csv or jsonl (a session with its messages per line).")
    ] = "csv",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    user: Annotated[str | None, typer.Option(help="A private link's id, 'anonymous' or 'preview'.")] = None,
    channel: Annotated[Channel | None, typer.Option(help="Only sessions that came in this way.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day, like 2026-11-01.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (inclusive).")] = None,
) -> None:
    """Export an assistant's sessions, streamed, newest first."""
    from portico.metrics import export, params

    if format not in ("csv", "jsonl"):
        raise fail(f"format must be 'csv' or 'jsonl', not '{format}'.")
    try:
        filters = params.log_filters(user=user, channel=channel, start=start, end=end, end_reason=None, q=None)
    except InvalidRequest as exc:
        raise fail(exc.message) from None
    config = settings()

    async def main() -> int:
        engine = make_engine(config.resolved_database_url)
        try:
            sessionmaker = make_sessionmaker(engine)
            async with sessionmaker() as db:
                assistant_id = (await find_assistant(db, assistant)).id
            lines = (export.csv_lines if format == "csv" else export.jsonl_lines)(
                sessionmaker, assistant_id=assistant_id, filters=filters
            )
            handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
            try:
                async for chunk in lines:
                    handle.write(chunk)
            finally:
                if output:
                    handle.close()
            return 0
        finally:
            await engine.dispose()

    try:
        asyncio.run(main())
    except PorticoError as exc:
        raise fail(str(exc)) from None
