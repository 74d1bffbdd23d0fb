"""First-run setup, sign-in and out, sign-up (when open), password and API tokens."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from portico.db import SessionDep
from portico.errors import Conflict, InvalidRequest, PorticoError
from portico.identity import accounts, signin
from portico.identity import tokens as api_tokens
from portico.identity.deps import DashboardMember
from portico.identity.roles import Member
from portico.kit import net
from portico.schemas import Id
from portico.web.forms import SESSION_COOKIE, check_csrf, redirect, render, secure_cookies, signed_in

NEW_TOKEN_COOKIE = "portico_new_token"

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(check_csrf)])


def _safe_next(value: str | None) -> str:
    # Only paths inside the dashboard: never an open redirect to another site.
    if value and value.startswith("/dashboard") and not value.startswith("//"):
        return value
    return "/dashboard"


def _auth_page(request: Request, mode: str, status: int = 200, **context: object) -> HTMLResponse:
    pages = {
        "setup": (
            "Welcome to Portico",
            "Create the first owner account. You can add more later.",
            "Create account",
            "/dashboard/setup",
        ),
        "sign-up": ("Create an account", None, "Create account", "/dashboard/sign-up"),
        "sign-in": ("Sign in", None, "Sign in", "/dashboard/sign-in"),
    }
    title, intro, submit, action = pages[mode]
    base = {
        "title": title,
        "intro": intro,
        "submit": submit,
        "action": action,
        "mode": mode,
        "open_signup": request.app.state.settings.open_signup,
    }
    return render(request, "auth.html", {**base, **context}, status=status, page_url=action)


def _field_errors(exc: PorticoError) -> dict[str, str]:
    text = exc.message
    return {"password": text} if "password" in text.lower() else {"email": text}


async def _create_account(
    request: Request, db: SessionDep, mode: str, email: str, password: str, name: str = ""
) -> Response:
    try:
        owner = await accounts.create_owner(db, email=email, password=password, name=name)
    except (InvalidRequest, Conflict) as exc:
        return _auth_page(request, mode, status=422, email=email, name=name, errors=_field_errors(exc))
    token = await signin.open_session(db, owner=owner, days=request.app.state.settings.session_days)
    return signed_in(request, token, "/dashboard")


@router.get("/setup", response_class=HTMLResponse)
async def setup_page(request: Request, db: SessionDep) -> Response:
    if await accounts.count_owners(db) > 0:
        return redirect("/dashboard/sign-in")
    return _auth_page(request, "setup")


@router.post("/setup")
async def setup(
    request: Request,
    db: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    if await accounts.count_owners(db) > 0:
        return redirect("/dashboard/sign-in")
    return await _create_account(request, db, "setup", email, password, name)


@router.get("/sign-up", response_class=HTMLResponse)
async def sign_up_page(request: Request, db: SessionDep) -> Response:
    if not request.app.state.settings.open_signup and await accounts.count_owners(db) > 0:
        return render(
            request,
            "error.html",
            {
                "title": "Sign-up is closed",
                "message": "Ask the person who runs this Portico to create an account for you.",
            },
            status=403,
        )
    return _auth_page(request, "sign-up")


@router.post("/sign-up")
async def sign_up(
    request: Request,
    db: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    if not request.app.state.settings.open_signup and await accounts.count_owners(db) > 0:
        return render(
            request,
            "error.html",
            {
                "title": "Sign-up is closed",
                "message": "Ask the person who runs this Portico to create an account for you.",
            },
            status=403,
        )
    return await _create_account(request, db, "sign-up", email, password, name)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, db: SessionDep, next: str | None = None) -> Response:
    if await accounts.count_owners(db) == 0:
        return redirect("/dashboard/setup")
    return _auth_page(request, "sign-in", next=_safe_next(next))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    db: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    settings = request.app.state.settings
    seen_from = net.client_address(request, settings.trusted_proxy_networks)
    try:
        _owner, token = await signin.sign_in(
            db,
            email=email,
            password=password,
            address=net.pseudonym(seen_from, settings.resolved_secret_key()),
            days=settings.session_days,
        )
    except (signin.SignInRefused, signin.SignInLocked) as exc:
        # A page, not a raised error: the request's transaction still commits the recorded failure.
        return _auth_page(
            request, "sign-in", status=exc.status, email=email, form_error=exc.message, next=_safe_next(next)
        )
    return signed_in(request, token, _safe_next(next))


@router.post("/sign-out")
async def sign_out(request: Request, db: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await signin.sign_out(db, token)
    response = redirect("/dashboard/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _account_page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    base = {"title": "Account", "section": "account"}
    return render(request, "account.html", {**base, **context}, status=status, page_url="/dashboard/account")


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, member: DashboardMember, done: str | None = None) -> Response:
    notice = "Your password was changed. Other browsers were signed out." if done == "password" else None
    return _account_page(request, notice=notice)


@router.post("/account/password")
async def change_password(
    request: Request,
    db: SessionDep,
    member: DashboardMember,
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
) -> Response:
    try:
        await signin.change_password(
            db, member=member, current=current, new=new, keep_token=request.cookies[SESSION_COOKIE]
        )
    except signin.SignInRefused as exc:
        return _account_page(request, status=422, errors={"current": exc.message})
    except InvalidRequest as exc:
        return _account_page(request, status=422, errors={"new": exc.message})
    return redirect("/dashboard/account?done=password")


async def _tokens_page(
    request: Request, db: SessionDep, member: Member, status: int = 200, **context: object
) -> Response:
    listed = await api_tokens.list_api_tokens(db, member=member)
    base = {"title": "API tokens", "section": "tokens", "tokens": listed}
    return render(request, "tokens.html", {**base, **context}, status=status, page_url="/dashboard/tokens")


@router.get("/tokens", response_class=HTMLResponse)
async def tokens(request: Request, db: SessionDep, member: DashboardMember) -> Response:
    # A new token is shown once, on the page the creation redirected to: it came in a cookie that
    # lives a minute, is read once, and holds the token encrypted (never in a URL).
    sealed = request.cookies.get(NEW_TOKEN_COOKIE)
    new_token = None
    if sealed:
        with contextlib.suppress(ValueError):  # sealed under a secret key that has changed since
            new_token = request.app.state.vault.decrypt(sealed)
    response = await _tokens_page(request, db, member, new_token=new_token)
    if sealed:
        response.delete_cookie(NEW_TOKEN_COOKIE, path="/dashboard/tokens")
    return response


@router.post("/tokens")
async def create_token(
    request: Request, db: SessionDep, member: DashboardMember, name: Annotated[str, Form()] = ""
) -> Response:
    typed = name
    name = name.strip()
    if not name or len(name) > 200:
        errors = {"name": "Give the token a name of 1 to 200 characters, so you know what it is for later."}
        return await _tokens_page(request, db, member, status=422, errors=errors, name=typed)
    _token, plain = await api_tokens.create_api_token(db, member=member, name=name)
    response = redirect("/dashboard/tokens")
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        request.app.state.vault.encrypt(plain),
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/dashboard/tokens",
    )
    return response


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(db: SessionDep, member: DashboardMember, token_id: Id) -> Response:
    await api_tokens.revoke_api_token(db, member=member, token_id=token_id)
    return redirect("/dashboard/tokens")
