"""The `portico` command. Errors go to stderr as one sentence, with exit code 1."""

from __future__ import annotations

import asyncio
import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.access.cli import links_app
from portico.assistants import service as assistants_service
from portico.assistants.schemas import AssistantCreate, AssistantUpdate, Quotas
from portico.commands import fail, find_assistant, find_owner, first_error, operator, own_team, run, settings, vault
from portico.config import Settings
from portico.db import make_engine, make_sessionmaker
from portico.errors import InvalidRequest, PorticoError
from portico.identity.cli import owners_app, tokens_app
from portico.kit.spreadsheet import safe_cell
from portico.metrics import search
from portico.migrations.run import upgrade_connection
from portico.models import Assistant, Membership
from portico.teams.cli import members_app, teams_app
from portico.vocabulary import Channel, ShareMode, Status

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Portico: publish AI assistants.")
db_app = typer.Typer(no_args_is_help=True, help="The database.")
assistants_app = typer.Typer(no_args_is_help=True, help="Assistants.")
logs_app = typer.Typer(no_args_is_help=True, help="Logs: the sessions of an assistant.")
app.add_typer(db_app, name="db")
app.add_typer(owners_app, name="owners")
app.add_typer(tokens_app, name="tokens")
app.add_typer(assistants_app, name="assistants")
app.add_typer(links_app, name="links")
app.add_typer(logs_app, name="logs")
app.add_typer(members_app, name="members")
app.add_typer(teams_app, name="teams")


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

    async def main() -> tuple[str | None, str | None]:
        engine = make_engine(config.resolved_database_url)
        try:
            async with engine.begin() as conn:
                versions = await conn.run_sync(upgrade_connection)
            # Logs search's vectors of sessions saved before migration 0014, a batch per transaction:
            # stopped, this goes on where it was (so does a running server, once a minute).
            batches = await search.backfill_now(make_sessionmaker(engine))
            if batches:
                typer.echo(f"Search vectors filled for older sessions ({batches} batches).")
            return versions
        finally:
            await engine.dispose()

    if config.resolved_database_url.startswith("sqlite"):
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        before, after = asyncio.run(main())
    except OSError as exc:
        raise fail(f"cannot reach the database ({exc.strerror or exc}).") from None
    if before is None:
        typer.echo(f"Created the database at version {after}.")
    elif before != after:
        typer.echo(f"Upgraded the database from version {before} to {after}.")
    else:
        typer.echo(f"The database is already up to date at version {after}.")


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
        writer.writerow([a.id, a.public_id, a.status, a.share_mode, a.published_version or "", safe_cell(a.name)])


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
        raise fail(first_error(exc)) from None

    async def work(db: AsyncSession, config: Settings) -> Assistant:
        who = await find_owner(db, owner)
        member = await own_team(db, who)
        return await assistants_service.create_assistant(db, member=member, data=data, vault=vault(config))

    assistant = run(work)
    typer.echo(f"{assistant.id},{assistant.public_id}")


@assistants_app.command("duplicate")
def assistants_duplicate(assistant: str) -> None:
    """Copy an assistant's draft, knowledge, starters and settings as a new unpublished, offline
    assistant ("Copy of ..."); prints its id and public id."""

    async def work(db: AsyncSession, _config: Settings) -> Assistant:
        found = await find_assistant(db, assistant)
        return await assistants_service.duplicate_assistant(db, member=operator(found), assistant=found)

    duplicate = run(work)
    typer.echo(f"{duplicate.id},{duplicate.public_id}")


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
        raise fail(first_error(exc)) from None

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
