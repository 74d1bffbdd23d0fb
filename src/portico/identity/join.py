"""Joining a team by an invitation link: signed in already, by signing in, or by a new account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from portico.db import SessionDep
from portico.errors import PorticoError
from portico.identity import accounts, invitations, signin
from portico.kit import net
from portico.web.forms import SESSION_COOKIE, check_csrf, redirect, render, signed_in

# Sign-up with an email that has an account: said as it would be for an email without one that
# cannot sign in, so the page never confirms who has an account here (issue 21).
EMAIL_NEUTRAL = "If this email already has an account, sign in with its password to join. Otherwise check the email."

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/join", response_class=HTMLResponse)
async def join_page(request: Request, db: SessionDep) -> Response:
    """The invitation's secret is in the URL fragment: the page's script copies it into the form."""
    token = request.cookies.get(SESSION_COOKIE)
    member = await signin.member_for_session(db, token) if token else None
    return render(request, "join.html", {"title": "Join a team", "signed_in": member.email if member else None})


@router.post("/join/about")
async def about(db: SessionDep, invitation: Annotated[str, Form()] = "") -> JSONResponse:
    """What the invitation in the page's fragment offers, for its heading; the secret comes in the
    body (never a URL) and the answer names only what its holder may join anyway."""
    try:
        heading = await invitations.describe(db, secret=invitation)
    except PorticoError as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)
    return JSONResponse({"heading": heading})


@router.post("/join")
async def join(
    request: Request,
    db: SessionDep,
    invitation: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    settings = request.app.state.settings
    token = request.cookies.get(SESSION_COOKIE)
    current = await signin.member_for_session(db, token) if token else None

    try:
        heading = await invitations.describe(db, secret=invitation)
    except PorticoError:
        heading = None

    def page(status: int, message: str) -> Response:
        context = {
            "title": "Join a team",
            "heading": heading,
            "signed_in": current.email if current else None,
            "form_error": message,
            "email": email,
            "name": name,
            # Back into the form, so a mistyped password does not need the link opened again.
            "invitation": invitation,
        }
        return render(request, "join.html", context, status=status)

    async def sign_in_and_join() -> str:
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
        return session

    try:
        # Checked first, so a refused invitation creates no account and signs no one in.
        await invitations.check(db, secret=invitation)
        if current is not None and token:
            account = await accounts.get_account(db, current.account_id or 0)
            joined = await invitations.accept(db, account=account, secret=invitation)
            await signin.switch_team(db, token=token, account_id=account.id, team_id=joined.team_id)
            return redirect("/dashboard/team?done=joined")
        if mode == "sign-up":
            # The invitation is the permission: sign-up need not be open.
            try:
                account = await accounts.create_owner(db, email=email, password=password, name=name)
            except accounts.EmailTaken:
                # The account's own password signs in and joins, as "Sign in and join" would;
                # any other is answered without saying that the account exists.
                try:
                    session = await sign_in_and_join()
                except signin.SignInRefused:
                    return page(signin.SignInRefused.status, EMAIL_NEUTRAL)
            else:
                joined = await invitations.accept(db, account=account, secret=invitation)
                session = await signin.open_session(
                    db, owner=account, days=settings.session_days, team_id=joined.team_id
                )
        else:
            session = await sign_in_and_join()
    except (signin.SignInRefused, signin.SignInLocked) as exc:
        # A page, not a raised error: the recorded sign-in failure still commits.
        return page(exc.status, exc.message)
    except PorticoError as exc:
        # Nothing half done stays: no account without its team, no unused sign-in.
        await db.rollback()
        return page(exc.status, exc.message)
    return signed_in(request, session, "/dashboard/team?done=joined")
