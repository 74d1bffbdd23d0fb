"""The Share page: status, share mode, the public link, the embed code and Users (private links)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from portico.access import links as links_service
from portico.access import qr, sheet
from portico.access.csv_import import decode_upload, parse_link_rows
from portico.access.schemas import EARLIEST_YEAR, MAX_SESSIONS_CAP, BulkAction, LinkIn, MaxSessions
from portico.assistants import service
from portico.assistants.deps import DashboardAssistant
from portico.assistants.schemas import AssistantUpdate, ShareIn, StatusIn
from portico.db import SessionDep
from portico.errors import InvalidRequest, LimitReached
from portico.identity.deps import DashboardMember
from portico.identity.roles import Member
from portico.kit.spreadsheet import SafeWriter
from portico.models import Assistant, utcnow
from portico.schemas import Id
from portico.vocabulary import ShareMode, Status
from portico.web.forms import FormInvalid, check_csrf, parse_form, redirect
from portico.web.frame import assistant_page

router = APIRouter(
    prefix="/dashboard/assistants/{assistant_id}", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
NAMES_UPLOAD_MAX = 256 * 1024
CAP = TypeAdapter(MaxSessions)
WHOLE_CAP = f"a whole number from 0 (unlimited) to {MAX_SESSIONS_CAP:,}"
CAP_SENTENCE = f"Enter {WHOLE_CAP}."
USER_SENTENCES = {"name": "Give the user or group a name of 1 to 200 characters.", "max_sessions": CAP_SENTENCE}
MODE_SENTENCE = "Choose Anyone with the link or Private."
CODE_SENTENCES = {"access_code": "An access code has 4 to 64 characters, not only spaces.", "mode": MODE_SENTENCE}
BULK_ACTIONS: tuple[BulkAction, ...] = get_args(BulkAction)
PRINT = "print"  # a bulk action of the dashboard's only: it changes nothing, so the sheet is the answer
# What each bulk action did, after the count: "3 links paused." (the confirmations are in share.html).
BULK_DONE: dict[str, str] = {"pause": "paused", "resume": "resumed", "expire": "ended", "delete": "deleted"}


def _share_url(assistant: Assistant, suffix: str = "") -> str:
    return f"/dashboard/assistants/{assistant.id}/share{suffix}"


async def share_page(
    request: Request, db: SessionDep, assistant: Assistant, status: int = 200, **context: Any
) -> HTMLResponse:
    settings = request.app.state.settings
    vault = request.app.state.vault
    params = request.query_params
    show_deleted = params.get("deleted") == "1"
    links = await links_service.list_links(db, assistant=assistant, include_revoked=show_deleted)
    outs = [links_service.link_out(link, vault=vault, base_url=settings.base_url) for link in links]
    listing = links_service.Listing.of(params.get("q", ""), params.get("sort", ""), deleted=show_deleted)
    shown = listing.apply(outs)
    outs = [o for o in outs if not o.revoked]
    warnings = []
    if assistant.status == Status.LIVE and assistant.published_version is None:
        warnings.append(
            "This assistant is Live but has never been published, so guests are told it is not ready. Publish it first."
        )
    if assistant.status != Status.LIVE and outs:
        warnings.append(
            f"This assistant is Offline: none of its {len(outs)} private link{'s' if len(outs) != 1 else ''} work until you switch it Live."
        )
    new_ids = {int(i) for i in request.query_params.get("new", "").split(",") if i.isdigit()}
    return await assistant_page(
        request,
        db,
        assistant,
        "share",
        "Share",
        status=status,
        links=shown,
        listing=listing,
        active=len(outs),
        limit=settings.max_private_links,
        warnings=warnings,
        public_url=links_service.public_url(assistant, base_url=settings.base_url),
        embed_code=f'<script src="{settings.base_url}/widget.js" data-assistant="{assistant.widget_id}" async></script>',
        now=utcnow(),
        # A stored end is the start of the day after the date typed: the form shows that date.
        just_before=timedelta(microseconds=1),
        midnight=time(),
        new_links=[o for o in outs if o.id in new_ids],
        **context,
    )


@router.get("/share", response_class=HTMLResponse)
async def share(
    request: Request, db: SessionDep, assistant: DashboardAssistant, done: str | None = None, count: str = ""
) -> Response:
    notices = {
        "status": "Status saved.",
        "mode": "Share settings saved.",
        "rotated": "The public link changed; the old one no longer works. Embedded widgets keep working.",
        "widget-rotated": "The widget id changed: update the snippet on every website that embeds this assistant.",
        "code-set": "Access code saved. Guests of the public link and the widget now need it.",
        "code-removed": "Access code removed: the public link works without one.",
        "public-expiry": "The public link's end date was saved.",
        "paused": "Link paused: its user is told so until you resume it.",
        "resumed": "Link resumed.",
        "reset": "Sessions used set back to 0.",
        "expiry": "End date saved.",
        "cap": "Cap saved.",
        "renamed": "User renamed.",
        "domains": "Allowed websites saved.",
        "reissued": "New link made; the old one no longer works.",
        "deleted": "User deleted: their link no longer works.",
    }
    notice = notices.get(done or "")
    if done and done.startswith("bulk-") and done[5:] in BULK_DONE:
        n = int(count) if count.isdigit() and len(count) < 6 else 0
        notice = f"{n} link{'s' if n != 1 else ''} {BULK_DONE[done[5:]]}."
    return await share_page(request, db, assistant, notice=notice)


def _only(invalid: FormInvalid) -> str:
    return next(iter(invalid.errors.values()))


@router.post("/status")
async def set_status(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    try:
        body = parse_form(StatusIn, {"status": form.get("status", "")}, sentences={"status": "Choose Live or Offline."})
    except FormInvalid as invalid:
        raise InvalidRequest(_only(invalid)) from None
    await service.set_status(db, member=member, assistant=assistant, status=body.status)
    if form.get("back") == "publish":
        # The Publish page's own "Switch Live": the owner stays there and sees the new status.
        return redirect(f"/dashboard/assistants/{assistant.id}/publish?done=status")
    return redirect(_share_url(assistant, "?done=status"))


@router.post("/share-mode")
async def set_mode(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    try:
        body = parse_form(ShareIn, {"mode": form.get("mode", "")}, sentences={"mode": MODE_SENTENCE})
    except FormInvalid as invalid:
        raise InvalidRequest(_only(invalid)) from None
    await service.set_share_mode(db, member=member, assistant=assistant, mode=body.mode)
    return redirect(_share_url(assistant, "?done=mode"))


@router.post("/domains")
async def set_domains(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    text = str((await request.form()).get("allowed_domains", ""))
    try:
        data = parse_form(AssistantUpdate, {"allowed_domains": text.splitlines()})
    except FormInvalid as invalid:
        return await share_page(request, db, assistant, status=422, errors=invalid.errors, domains_text=text)
    await service.update_assistant(db, member=member, assistant=assistant, data=data, vault=request.app.state.vault)
    return redirect(_share_url(assistant, "?done=domains"))


@router.post("/rotate")
async def rotate(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember) -> Response:
    await service.rotate_public_link(db, member=member, assistant=assistant)
    return redirect(_share_url(assistant, "?done=rotated"))


@router.post("/widget-id/rotate")
async def rotate_widget(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember) -> Response:
    await service.rotate_widget_id(db, member=member, assistant=assistant)
    return redirect(_share_url(assistant, "?done=widget-rotated#embed-title"))


@router.post("/access-code")
async def set_access_code(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    remove = form.get("remove") is not None
    code = None if remove else str(form.get("access_code", ""))
    try:
        body = parse_form(ShareIn, {"mode": assistant.share_mode, "access_code": code}, sentences=CODE_SENTENCES)
    except FormInvalid as invalid:
        return await share_page(request, db, assistant, status=422, errors=invalid.errors)
    await service.set_share_mode(db, member=member, assistant=assistant, mode=body.mode, public_link=body)
    return redirect(_share_url(assistant, "?done=code-removed" if remove else "?done=code-set"))


@router.post("/public-link/expiry")
async def set_public_expiry(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    typed = str((await request.form()).get("expires_on", ""))
    expires = _end_of_day(typed)
    if isinstance(expires, str):
        return await share_page(
            request,
            db,
            assistant,
            status=422,
            errors={"public_expires_on": expires},
            typed={"public_expires_on": typed},
        )
    body = ShareIn(mode=ShareMode(assistant.share_mode), public_link_expires_at=expires)
    await service.set_share_mode(db, member=member, assistant=assistant, mode=body.mode, public_link=body)
    return redirect(_share_url(assistant, "?done=public-expiry"))


def _end_of_day(value: str) -> datetime | None | str:
    """A date typed in a form (YYYY-MM-DD): the link ends when that day ends in UTC; a date and
    time (YYYY-MM-DDTHH:MM, the field of an end set to the minute through the API): then, in UTC;
    empty is never. A str is the sentence saying what is wrong."""
    typed = value.strip()
    if not typed:
        return None
    try:
        if "T" in typed:
            end = datetime.fromisoformat(typed)
            if end.tzinfo is not None:
                raise ValueError(typed)
            end = end.replace(tzinfo=UTC)
        else:
            end = datetime.combine(date.fromisoformat(typed), time(), tzinfo=UTC) + timedelta(days=1)
    except (ValueError, OverflowError):
        return f"'{typed[:40]}' is not a date like 2026-12-31 (before the year 9999)."
    if end.year < EARLIEST_YEAR:
        return (
            f"'{typed[:40]}' is long past, so it cannot be an end date: give a date from the year {EARLIEST_YEAR} on."
        )
    return end


def _cap(value: str) -> int | None:
    """A cap typed in a form, by LinkIn's rule: empty is 0 (unlimited); None when it is not a cap."""
    try:
        cap: int = CAP.validate_python(value.strip() or "0", strict=False)
    except ValidationError:
        return None
    return cap


async def _create(
    request: Request,
    db: SessionDep,
    member: Member,
    assistant: Assistant,
    items: list[LinkIn],
    typed: dict[str, str],
) -> Response:
    settings = request.app.state.settings
    try:
        created = await links_service.create_links(
            db,
            member=member,
            assistant=assistant,
            items=items,
            limit=settings.max_private_links,
            vault=request.app.state.vault,
        )
    except LimitReached as exc:
        return await share_page(
            request, db, assistant, status=409, form_error=exc.message, typed=typed, open_create=True
        )
    # The address's fragment is the first new link's Copy button: the browser focuses it on arrival.
    return redirect(_share_url(assistant, "?new=" + ",".join(str(link.id) for link in created) + "#new-link-copy"))


@router.post("/users")
async def create_user(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    typed = {"name": str(form.get("name", "")), "max_sessions": str(form.get("max_sessions", ""))}
    try:
        item = parse_form(
            LinkIn, {**typed, "max_sessions": typed["max_sessions"].strip() or "0"}, sentences=USER_SENTENCES
        )
    except FormInvalid as invalid:
        errors = invalid.errors
    else:
        if typed["max_sessions"].strip():
            return await _create(request, db, member, assistant, [item], typed=typed)
        # A cleared box is not "unlimited" (0 is): saving it as ∞ surprised owners.
        errors = {"max_sessions": f"Enter the maximum sessions for {item.name}: {WHOLE_CAP}."}
    return await share_page(request, db, assistant, status=422, errors=errors, typed=typed, open_create=True)


@router.post("/users/batch")
async def create_users(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    typed = {"names": str(form.get("names", "")), "batch_max": str(form.get("max_sessions", ""))}
    upload = form.get("names_file")
    field = "names"
    try:
        cap = _cap(typed["batch_max"]) if typed["batch_max"].strip() else None
        if cap is None:
            field = "batch_max"
            raise InvalidRequest(f"Enter the maximum sessions for each new user: {WHOLE_CAP}.")
        text = typed["names"]
        if isinstance(upload, UploadFile) and upload.filename:
            field = "names_file"
            data = await upload.read(NAMES_UPLOAD_MAX + 1)
            if len(data) > NAMES_UPLOAD_MAX:
                raise InvalidRequest("This file is too large for a list of names (256 KiB at most).")
            text = decode_upload(data)
        items = parse_link_rows(text, default_max_sessions=cap)
    except InvalidRequest as exc:
        lines = exc.details["lines"] if isinstance(exc.details, dict) else []
        message = exc.message.split(":")[0] + "." if lines else exc.message
        return await share_page(
            request, db, assistant, status=422, errors={field: message}, bad_lines=lines, typed=typed, open_create=True
        )
    if form.get("duplicates") != "1":
        # Two links of one name can be told apart only by their number: ask before making them.
        existing = [link.name for link in await links_service.list_links(db, assistant=assistant)]
        repeated = links_service.repeated_names([item.name for item in items], existing)
        if repeated:
            shown = ", ".join(f"“{name}”" for name in repeated[:10]) + (" and more" if len(repeated) > 10 else "")
            message = (
                f"These names are already in use or appear twice: {shown}. Links with the same name can be told "
                "apart only by their number (#) in the list. Change the names, or tick “Create them anyway”."
            )
            typed["names"] = text
            return await share_page(
                request,
                db,
                assistant,
                status=409,
                errors={"names": message},
                typed=typed,
                open_create=True,
                ask_duplicates=True,
            )
    return await _create(request, db, member, assistant, items, typed=typed)


@router.get("/users.csv")
async def users_csv(request: Request, db: SessionDep, assistant: DashboardAssistant, ids: str = "") -> Response:
    settings = request.app.state.settings
    wanted = {int(i) for i in ids.split(",") if i.isdigit()}
    links = await links_service.list_links(db, assistant=assistant)
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(["name", "link"])
    for link in links:
        if not wanted or link.id in wanted:
            writer.writerow(
                [link.name, links_service.link_out(link, vault=request.app.state.vault, base_url=settings.base_url).url]
            )
    filename = f"portico-users-{assistant.public_id}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post("/users/{link_id}/cap")
async def set_cap(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id
) -> Response:
    typed = str((await request.form()).get("max_sessions", ""))
    # Blank is not "unlimited" here: a cleared box saved as ∞ surprised owners (0 is unlimited).
    cap = _cap(typed) if typed.strip() else None
    if cap is None:
        link = await links_service.get_link(db, assistant=assistant, link_id=link_id)
        message = f"The cap for {link.name} must be {WHOLE_CAP}; it was not changed."
        return await _row_failed(request, db, assistant, f"cap-{link_id}", message, typed)
    await links_service.update_link(db, member=member, assistant=assistant, link_id=link_id, max_sessions=cap)
    return redirect(_share_url(assistant, "?done=cap#users"))


@router.post("/users/{link_id}/rename")
async def rename(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id
) -> Response:
    typed = str((await request.form()).get("name", ""))
    try:
        item = parse_form(LinkIn, {"name": typed}, sentences=USER_SENTENCES)
    except FormInvalid as invalid:
        link = await links_service.get_link(db, assistant=assistant, link_id=link_id)
        message = f"{link.name} was not renamed: {invalid.errors['name']}"
        return await _row_failed(request, db, assistant, f"name-{link_id}", message, typed)
    await links_service.update_link(db, member=member, assistant=assistant, link_id=link_id, name=item.name)
    return redirect(_share_url(assistant, "?done=renamed#users"))


async def _row_failed(
    request: Request, db: SessionDep, assistant: Assistant, field: str, message: str, typed: str
) -> HTMLResponse:
    """A row's form refused: the page again with the error beside that row's field (focused) and what
    was typed still in it."""
    return await share_page(request, db, assistant, status=422, errors={field: message}, typed={field: typed})


@router.post("/users/{link_id}/pause")
async def pause(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id) -> Response:
    await links_service.update_link(db, member=member, assistant=assistant, link_id=link_id, paused=True)
    return redirect(_share_url(assistant, "?done=paused#users"))


@router.post("/users/{link_id}/resume")
async def resume(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id) -> Response:
    await links_service.update_link(db, member=member, assistant=assistant, link_id=link_id, paused=False)
    return redirect(_share_url(assistant, "?done=resumed#users"))


@router.post("/users/{link_id}/reset")
async def reset(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id) -> Response:
    await links_service.reset_link(db, member=member, assistant=assistant, link_id=link_id)
    return redirect(_share_url(assistant, "?done=reset#users"))


@router.post("/users/{link_id}/expiry")
async def set_expiry(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id
) -> Response:
    typed = str((await request.form()).get("expires_on", ""))
    expires = _end_of_day(typed)
    if isinstance(expires, str):
        link = await links_service.get_link(db, assistant=assistant, link_id=link_id)
        message = f"End date for {link.name}: {expires}"
        return await _row_failed(request, db, assistant, f"expiry-{link_id}", message, typed)
    await links_service.update_link(db, member=member, assistant=assistant, link_id=link_id, expires_at=expires)
    return redirect(_share_url(assistant, "?done=expiry#users"))


@router.post("/users/bulk")
async def bulk(request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember) -> Response:
    form = await request.form()
    ids = [int(i) for i in form.getlist("ids") if isinstance(i, str) and i.isdigit() and len(i) < 10]
    action = str(form.get("action", ""))
    expires = _end_of_day(str(form.get("expires_on", ""))) if action == "expire" else None
    problem = None
    if not ids:
        problem = "Select at least one user first."
    elif action not in (*BULK_ACTIONS, PRINT):
        problem = "Choose what to do with the selected users."
    elif isinstance(expires, str):
        problem = expires
    if problem is None and action == PRINT:
        return await sheet.print_sheet(request, db, assistant, ids)
    if problem is not None:
        return await share_page(request, db, assistant, status=422, errors={"bulk-action": problem})
    assert not isinstance(expires, str)
    done = await links_service.bulk(
        db, member=member, assistant=assistant, ids=ids, action=cast(BulkAction, action), expires_at=expires
    )
    return redirect(_share_url(assistant, f"?done=bulk-{action}&count={len(done)}#users"))


@router.post("/users/{link_id}/reissue")
async def reissue(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id
) -> Response:
    link = await links_service.reissue_link(
        db, member=member, assistant=assistant, link_id=link_id, vault=request.app.state.vault
    )
    return redirect(_share_url(assistant, f"?done=reissued&new={link.id}#new-link-copy"))


@router.post("/users/{link_id}/delete")
async def delete_user(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, link_id: Id) -> Response:
    await links_service.delete_link(db, member=member, assistant=assistant, link_id=link_id)
    return redirect(_share_url(assistant, "?done=deleted#users"))


# QR codes on the Share page: by link id, never by key (a key in a URL would reach the server's
# logs), and `no-store` (a QR code of a private link is its key).


@router.get("/public-link/qr.svg")
async def public_qr(request: Request, assistant: DashboardAssistant, download: bool = False) -> Response:
    url = links_service.public_url(assistant, base_url=request.app.state.settings.base_url)
    return qr.response(url, filename=f"portico-{assistant.public_id}-qr.svg" if download else None)


@router.get("/users/{link_id}/qr.svg")
async def link_qr(
    request: Request, db: SessionDep, assistant: DashboardAssistant, link_id: Id, download: bool = False
) -> Response:
    link = await links_service.live_link(db, assistant=assistant, link_id=link_id)
    url = links_service.link_url(link, vault=request.app.state.vault, base_url=request.app.state.settings.base_url)
    return qr.response(url, filename=f"portico-link-{link.id}-qr.svg" if download else None)
