"""Dashboard forms: CSRF protection, rendering with the signed-in owner, redirects."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portico.errors import PorticoError
from portico.web.pages import templates

CSRF_COOKIE = "portico_csrf"
SESSION_COOKIE = "portico_session"


class CsrfFailed(PorticoError):
    status = 403
    code = "csrf_failed"
    message = "This form expired or came from another site. Go back, reload the page and try again."


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.base_url.startswith("https://")


def csrf_token(request: Request) -> str:
    """The double-submit token: the same random value in an HttpOnly cookie and in each form."""
    if not hasattr(request.state, "csrf"):
        request.state.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    return request.state.csrf


async def check_csrf(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    sent = str(form.get("csrf", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent, cookie):
        raise CsrfFailed()


def render(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    token = csrf_token(request)
    context = {"csrf": token, "owner": getattr(request.state, "owner", None), **(context or {})}
    response = templates.TemplateResponse(request, template, context, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path="/"
        )
    return response


def redirect(url: str) -> RedirectResponse:
    # 303: after a POST, the browser follows with a GET (post/redirect/get).
    return RedirectResponse(url, status_code=303)
