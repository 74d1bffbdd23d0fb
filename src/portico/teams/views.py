"""The dashboard's Team pages: members and roles, invitations, switching team, the audit log, joining."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from portico.assistants import service as assistants
from portico.db import SessionDep
from portico.errors import Conflict, InvalidRequest, NotFound, PorticoError
from portico.kit import net
from portico.owners import service as owners
from portico.owners import signin
from portico.schemas import Id
from portico.teams import audit, invitations
from portico.teams import service as teams
from portico.teams.roles import Member
from portico.vocabulary import AUDIT_LABELS, TEAM_ROLE_LABELS, AuditAction, TeamRole
from portico.web.deps import DashboardMember
from portico.web.forms import SESSION_COOKIE, check_csrf, redirect, render, signed_in

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(check_csrf)])

NOTICES = {
    "renamed": "The team was renamed.",
    "role": "The role was changed. It applies at once, to the member's tokens too.",
    "removed": "The member was removed. Their tokens for this team stopped working.",
    "transferred": "Ownership was transferred. You are now an Admin of this team.",
    "revoked": "The invitation was withdrawn; its link no longer works.",
    "joined": "Welcome to the team.",
    "left": "You left the team.",
    "started": "Your new team is ready: you are its Owner. Invite people below; switch teams at the top.",
}


async def team_page(
    request: Request, db: SessionDep, member: Member, status: int = 200, **context: Any
) -> HTMLResponse:
    base = {
        "title": "Team",
        "section": "team",
        "assistant_count": await teams.count_assistants(db, team_id=member.team_id),
        "members": await teams.list_members(db, team_id=member.team_id),
        "pending": await invitations.list_pending(db, team_id=member.team_id),
        "role_labels": TEAM_ROLE_LABELS,
    }
    response = render(request, "team.html", {**base, **context}, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/team", response_class=HTMLResponse)
async def team(request: Request, db: SessionDep, member: DashboardMember, done: str | None = None) -> Response:
    return await team_page(request, db, member, notice=NOTICES.get(done or ""))


@router.post("/team/switch")
async def switch(
    request: Request, db: SessionDep, member: DashboardMember, team_id: Annotated[str, Form()] = ""
) -> Response:
    if not team_id.isdigit() or len(team_id) > 10:
        raise NotFound("You are not a member of this team.")
    await signin.switch_team(
        db, token=request.cookies[SESSION_COOKIE], account_id=member.account_id or 0, team_id=int(team_id)
    )
    return redirect("/dashboard")


async def _act(request: Request, db: SessionDep, member: Member, done: str, work: Any) -> Response:
    """Run a change; a refusal the member can fix is shown on the page, not as an error page."""
    try:
        await work
    except (InvalidRequest, Conflict) as exc:
        return await team_page(request, db, member, status=exc.status, form_error=exc.message)
    return redirect(f"/dashboard/team?done={done}")


@router.post("/team/name")
async def rename(
    request: Request, db: SessionDep, member: DashboardMember, name: Annotated[str, Form()] = ""
) -> Response:
    return await _act(request, db, member, "renamed", teams.rename_team(db, member=member, name=name))


@router.post("/team/members/{member_id}/role")
async def change_role(
    request: Request, db: SessionDep, member: DashboardMember, member_id: Id, role: Annotated[str, Form()] = ""
) -> Response:
    if role not in (TeamRole.ADMIN, TeamRole.EDITOR):
        return await team_page(request, db, member, status=422, form_error="Choose Admin or Editor.")
    work = teams.change_role(db, member=member, account_id=member_id, role=TeamRole(role))
    return await _act(request, db, member, "role", work)


@router.post("/team/members/{member_id}/remove")
async def remove(request: Request, db: SessionDep, member: DashboardMember, member_id: Id) -> Response:
    return await _act(request, db, member, "removed", teams.remove_member(db, member=member, account_id=member_id))


@router.post("/team/transfer")
async def transfer(
    request: Request, db: SessionDep, member: DashboardMember, member_id: Annotated[str, Form()] = ""
) -> Response:
    if not member_id.isdigit() or len(member_id) > 10:
        return await team_page(request, db, member, status=422, form_error="Choose the member who becomes the Owner.")
    work = teams.transfer_ownership(db, member=member, account_id=int(member_id))
    return await _act(request, db, member, "transferred", work)


@router.post("/team/leave")
async def leave(request: Request, db: SessionDep, member: DashboardMember) -> Response:
    try:
        await teams.leave(db, member=member)
    except Conflict as exc:
        return await team_page(request, db, member, status=exc.status, form_error=exc.message)
    return redirect("/dashboard/team?done=left")


@router.post("/teams")
async def start(
    request: Request, db: SessionDep, member: DashboardMember, name: Annotated[str, Form()] = ""
) -> Response:
    """A new team of the member's own, where they are the Owner; this browser works in it from now on."""
    try:
        team = await teams.start_team(db, account_id=member.account_id or 0, name=name)
    except (InvalidRequest, Conflict) as exc:
        return await team_page(request, db, member, status=exc.status, errors={"new_team": exc.message}, new_team=name)
    await signin.switch_team(
        db, token=request.cookies[SESSION_COOKIE], account_id=member.account_id or 0, team_id=team.id
    )
    return redirect("/dashboard/team?done=started")


@router.post("/team/delete")
async def delete(
    request: Request,
    db: SessionDep,
    member: DashboardMember,
    team_id: Annotated[str, Form()] = "",
    confirm_name: Annotated[str, Form()] = "",
) -> Response:
    """Deleted as the API deletes, once the Owner has typed the team's name. The form names the team
    it was shown for: a second click, or another tab that switched team since, deletes nothing else."""
    if team_id != str(member.team_id):
        raise NotFound("This team no longer exists, or this page was for another team: nothing was deleted.")
    if confirm_name.strip() != member.team_name:
        problem = "Type the team's name exactly as shown above to delete it." if confirm_name.strip() else None
        errors = {"confirm_name": problem or "Type the team's name to confirm."}
        return await team_page(request, db, member, status=422, errors=errors, confirm_name=confirm_name)
    await teams.delete_team(db, member=member)
    return redirect("/dashboard?done=team_deleted")


@router.post("/team/invitations")
async def invite(
    request: Request, db: SessionDep, member: DashboardMember, role: Annotated[str, Form()] = ""
) -> Response:
    if role not in (TeamRole.ADMIN, TeamRole.EDITOR):
        return await team_page(request, db, member, status=422, errors={"role": "Choose Admin or Editor."})
    invitation, secret = await invitations.create(db, member=member, role=TeamRole(role))
    url = invitations.invitation_url(request.app.state.settings.base_url, secret)
    # Shown once, in this response only (team_page sends it with no-store).
    return await team_page(request, db, member, new_invitation=url, new_role=TEAM_ROLE_LABELS[TeamRole(role)])


@router.post("/team/invitations/{invitation_id}/revoke")
async def revoke(request: Request, db: SessionDep, member: DashboardMember, invitation_id: Id) -> Response:
    await invitations.revoke(db, member=member, invitation_id=invitation_id)
    return redirect("/dashboard/team?done=revoked")


@router.get("/team/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    db: SessionDep,
    member: DashboardMember,
    action: str = "",
    who: str = "",
    assistant: str = "",
    cursor: str | None = None,
) -> Response:
    values = {"action": action, "who": who, "assistant": assistant}
    try:
        chosen = AuditAction(action) if action else None
    except ValueError:
        raise InvalidRequest("Choose an action from the list.") from None
    entries, next_cursor = await audit.list_events(
        db,
        team_id=member.team_id,
        action=chosen,
        actor_id=_id_or_none(who),
        assistant_id=_id_or_none(assistant),
        cursor=cursor,
    )
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "section": "audit",
            "entries": entries,
            "next_cursor": next_cursor,
            "values": values,
            "query": query,
            "labels": AUDIT_LABELS,
            "members": await teams.list_members(db, team_id=member.team_id),
            "assistants": await assistants.list_owned(db, team_id=member.team_id),
        },
    )


def _id_or_none(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequest("Choose from the list.")
    return int(value)


@router.get("/join", response_class=HTMLResponse)
async def join_page(request: Request, db: SessionDep) -> Response:
    """The invitation's secret is in the URL fragment: the page's script copies it into the form."""
    token = request.cookies.get(SESSION_COOKIE)
    member = await signin.member_for_session(db, token) if token else None
    return render(request, "join.html", {"title": "Join a team", "signed_in": member.email if member else None})


@router.post("/join")
async def join(
    request: Request,
    db: SessionDep,
    invitation: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    settings = request.app.state.settings
    token = request.cookies.get(SESSION_COOKIE)
    current = await signin.member_for_session(db, token) if token else None

    def page(status: int, message: str) -> Response:
        context = {
            "title": "Join a team",
            "signed_in": current.email if current else None,
            "form_error": message,
            "email": email,
            # Back into the form, so a mistyped password does not need the link opened again.
            "invitation": invitation,
        }
        return render(request, "join.html", context, status=status)

    try:
        # Checked first, so a refused invitation creates no account and signs no one in.
        await invitations.check(db, secret=invitation)
        if current is not None and token:
            account = await owners.get_account(db, current.account_id or 0)
            joined = await invitations.accept(db, account=account, secret=invitation)
            await signin.switch_team(db, token=token, account_id=account.id, team_id=joined.team_id)
            return redirect("/dashboard/team?done=joined")
        if mode == "sign-up":
            # The invitation is the permission: sign-up need not be open.
            account = await owners.create_owner(db, email=email, password=password)
            joined = await invitations.accept(db, account=account, secret=invitation)
            session = await signin.open_session(db, owner=account, days=settings.session_days, team_id=joined.team_id)
        else:
            seen_from = net.client_address(request, settings.trusted_proxy_networks)
            account, session = await signin.sign_in(
                db,
                email=email,
                password=password,
                address=net.pseudonym(seen_from, settings.resolved_secret_key()),
                days=settings.session_days,
            )
            joined = await invitations.accept(db, account=account, secret=invitation)
            await signin.switch_team(db, token=session, account_id=account.id, team_id=joined.team_id)
    except (signin.SignInRefused, signin.SignInLocked) as exc:
        # A page, not a raised error: the recorded sign-in failure still commits.
        return page(exc.status, exc.message)
    except PorticoError as exc:
        # Nothing half done stays: no account without its team, no unused sign-in.
        await db.rollback()
        return page(exc.status, exc.message)
    return signed_in(request, session, "/dashboard/team?done=joined")
