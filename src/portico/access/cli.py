"""`portico links`: an assistant's private links from the command line, one or several at a time."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from portico.access import links as links_service
from portico.access import qr
from portico.access.csv_import import parse_link_rows
from portico.access.schemas import MAX_SESSIONS_CAP, BulkAction, LinkIn, LinksBulk
from portico.commands import fail, find_assistant, first_error, operator, run, vault
from portico.config import Settings
from portico.errors import InvalidRequest
from portico.kit.spreadsheet import safe_cell
from portico.models import Assistant

links_app = typer.Typer(
    no_args_is_help=True,
    help="Private links (the Users of an assistant). An assistant id starting with '-' goes after `--`.",
)


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
            raise fail(first_error(exc)) from None
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
        return [(safe_cell(out.name), out.url) for out in outs]

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
            [
                o.id,
                safe_cell(o.name),
                o.max_sessions,
                o.sessions_used,
                o.last_used_at.isoformat() if o.last_used_at else "",
                o.url,
            ]
            for o in outs
        ]

    rows = run(work)
    writer = csv.writer(sys.stdout)
    writer.writerow(["id", "name", "max_sessions", "sessions_used", "last_used_at", "url"])
    writer.writerows(rows)


# Several link ids at once are all or nothing: one unknown or deleted id changes none of them.
LinkIds = Annotated[list[int], typer.Argument(help="One or more private link ids (see `portico links list`).")]


def _links_command(assistant: str, ids: list[int], action: BulkAction, expires_at: datetime | None = None) -> int:
    async def work(db: AsyncSession, _config: Settings) -> int:
        found = await find_assistant(db, assistant)
        return len(
            await links_service.bulk(
                db, member=operator(found), assistant=found, ids=ids, action=action, expires_at=expires_at
            )
        )

    return run(work)


def _each_link(
    assistant: str, ids: list[int], change: Callable[[AsyncSession, Assistant, int], Awaitable[object]]
) -> int:
    async def work(db: AsyncSession, _config: Settings) -> int:
        found = await find_assistant(db, assistant)
        for link_id in dict.fromkeys(ids):
            await change(db, found, link_id)
        return len(set(ids))

    return run(work)


def _links(count: int) -> str:
    return f"{count} link{'s' if count != 1 else ''}"


@links_app.command("delete")
def links_delete(assistant: str, link_ids: LinkIds) -> None:
    """Delete (revoke) private links at once. An assistant id starting with '-' goes after `--`."""
    typer.echo(f"Deleted {_links(_links_command(assistant, link_ids, 'delete'))}: they no longer work.")


@links_app.command("pause")
def links_pause(assistant: str, link_ids: LinkIds) -> None:
    """Pause private links: their users are told so until you resume them."""
    typer.echo(f"Paused {_links(_links_command(assistant, link_ids, 'pause'))}.")


@links_app.command("resume")
def links_resume(assistant: str, link_ids: LinkIds) -> None:
    """Resume paused private links."""
    typer.echo(f"Resumed {_links(_links_command(assistant, link_ids, 'resume'))}.")


@links_app.command("expire")
def links_expire(
    assistant: str,
    link_ids: LinkIds,
    at: Annotated[str | None, typer.Option(help="When they end: ISO 8601 with an offset (default: now).")] = None,
    never: Annotated[bool, typer.Option(help="Remove the end date instead.")] = False,
) -> None:
    """End private links now or at a time, or (--never) remove their end date."""
    if never and at is not None:
        raise fail("give either --at or --never, not both.")
    if never:
        count = _each_link(
            assistant,
            link_ids,
            lambda db, a, i: links_service.update_link(db, member=operator(a), assistant=a, link_id=i, expires_at=None),
        )
        typer.echo(f"{_links(count)} without an end date.")
        return
    try:
        moment = datetime.fromisoformat(at) if at is not None else None
    except ValueError:
        raise fail(f"'{at}' is not a time like 2026-12-31T23:59:00+01:00 (ISO 8601 with its offset).") from None
    if moment is not None and moment.tzinfo is None:
        raise fail(f"'{at}' has no offset: say which time zone, like 2026-12-31T23:59:00+01:00 or ...Z for UTC.")
    try:
        body = LinksBulk.model_validate({"ids": link_ids, "action": "expire", "expires_at": moment})
    except ValidationError as exc:
        raise fail(first_error(exc)) from None
    count = _links_command(assistant, body.ids, "expire", body.expires_at)
    typer.echo(
        f"{_links(count)} end{'s' if count == 1 else ''} {body.expires_at.isoformat() if body.expires_at else 'now'}."
    )


@links_app.command("rename")
def links_rename(assistant: str, link_id: int, name: str) -> None:
    """Give a private link a new name (its key and link stay the same)."""
    try:
        item = LinkIn(name=name)
    except ValidationError as exc:
        raise fail(first_error(exc)) from None
    _each_link(
        assistant,
        [link_id],
        lambda db, a, i: links_service.update_link(db, member=operator(a), assistant=a, link_id=i, name=item.name),
    )
    typer.echo(f"Renamed to {item.name}.")


@links_app.command("cap")
def links_cap(assistant: str, max_sessions: int, link_ids: LinkIds) -> None:
    """Set the cap on sessions (0 = unlimited) of private links."""
    if not 0 <= max_sessions <= MAX_SESSIONS_CAP:
        raise fail(f"the cap must be a whole number from 0 (unlimited) to {MAX_SESSIONS_CAP:,}.")
    count = _each_link(
        assistant,
        link_ids,
        lambda db, a, i: links_service.update_link(
            db, member=operator(a), assistant=a, link_id=i, max_sessions=max_sessions
        ),
    )
    typer.echo(f"Cap set on {_links(count)}.")


@links_app.command("reset")
def links_reset(assistant: str, link_ids: LinkIds) -> None:
    """Set the sessions used of private links back to 0."""
    count = _each_link(
        assistant, link_ids, lambda db, a, i: links_service.reset_link(db, member=operator(a), assistant=a, link_id=i)
    )
    typer.echo(f"Sessions used set back to 0 on {_links(count)}.")


@links_app.command("qr")
def links_qr(
    assistant: str,
    link_ids: LinkIds,
    output: Annotated[
        str | None,
        typer.Option(
            help="A file for one link, or a folder (link-ID.svg): an existing one, or one ending in / to create it; "
            "default: stdout."
        ),
    ] = None,
) -> None:
    """The QR code (SVG) of private links. It holds the key: keep the files as safe as the links (written 0600)."""
    folder = _qr_folder(output, several=len(set(link_ids)) > 1)

    async def work(db: AsyncSession, config: Settings) -> list[tuple[int, str]]:
        found = await find_assistant(db, assistant)
        codes = []
        for link_id in dict.fromkeys(link_ids):
            link = await links_service.live_link(db, assistant=found, link_id=link_id)
            codes.append((link.id, qr.svg(links_service.link_url(link, vault=vault(config), base_url=config.base_url))))
        return codes

    codes = run(work)
    if output is None:
        typer.echo(codes[0][1])
        return
    if folder is not None:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"cannot create the folder {folder} ({exc.strerror or exc}).") from None
    for link_id, svg in codes:
        target = folder / f"link-{link_id}.svg" if folder is not None else Path(output)
        _write_secret(target, svg)
        typer.echo(f"Wrote {target}")


def _qr_folder(output: str | None, *, several: bool) -> Path | None:
    """The folder `--output` names, or None when it names a file (checked before anything is read)."""
    if output is None:
        if several:
            raise fail("for several links, give --output with a folder (ending in / to create it).")
        return None
    if not output.strip():
        raise fail("--output cannot be empty: give a file, or a folder ending in /.")
    path = Path(output)
    if output.endswith("/") or path.is_dir():
        if path.exists() and not path.is_dir():
            raise fail(f"{path} is a file, not a folder.")
        return path
    if several:
        raise fail("for several links, give --output with a folder (ending in / to create it).")
    if not path.parent.is_dir():
        raise fail(f"the folder {path.parent} does not exist (end --output with / to create a folder).")
    return None


def _write_secret(target: Path, text: str) -> None:
    """Owner-only (0600), also when the file was already there: a QR code holds its link's key."""
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(text)
    except OSError as exc:
        raise fail(f"cannot write {target} ({exc.strerror or exc}).") from None


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
