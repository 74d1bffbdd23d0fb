"""Dashboard forms: CSRF protection, rendering with the signed-in owner, redirects, and the
sentences shown next to a field when the API's own pydantic model refuses what was typed."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

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
    token: str = request.state.csrf
    return token


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
    member = getattr(request.state, "member", None)
    context = {
        "csrf": token,
        "owner": member,
        "member": member,
        "teams": getattr(request.state, "teams", []),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, context, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path="/"
        )
    return response


def redirect(url: str) -> RedirectResponse:
    # 303: after a POST, the browser follows with a GET (post/redirect/get).
    return RedirectResponse(url, status_code=303)


Model = TypeVar("Model", bound=BaseModel)


class FormInvalid(Exception):
    """What a form's fields got wrong, one sentence per field, ready to show next to each."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_form(
    model: type[Model],
    data: Mapping[str, Any],
    *,
    rename: Mapping[str, str] | None = None,
    sentences: Mapping[str, str] | None = None,
) -> Model:
    """`data` checked by the same model the JSON API uses, so a rule is written once.

    Forms send every value as text, so numbers are read from strings here ("600" is 600), which
    the API's strict bodies refuse. A refusal becomes FormInvalid: `rename` maps a model field to
    the form field that shows its message, `sentences` gives a field its own sentence.
    """
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        raise FormInvalid(form_errors(exc, rename=rename, sentences=sentences)) from None


def form_errors(
    exc: ValidationError, *, rename: Mapping[str, str] | None = None, sentences: Mapping[str, str] | None = None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        # The innermost field name: engine.openai.base_url shows next to base_url.
        names = [part for part in error["loc"] if isinstance(part, str)]
        field = (rename or {}).get(names[-1], names[-1]) if names else "form"
        errors.setdefault(field, (sentences or {}).get(field) or sentence(error))
    return errors


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def sentence(error: ErrorDetails) -> str:
    """pydantic's message, said the way the rest of the dashboard speaks."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("missing", "string_too_short") and ctx.get("min_length", 1) <= 1:
        return "This cannot be empty."
    if kind == "string_too_short":
        return f"Use at least {_number(ctx['min_length'])} characters."
    if kind == "string_too_long":
        return f"Use at most {_number(ctx['max_length'])} characters."
    if kind == "too_long":
        return f"Give at most {_number(ctx['max_length'])} entries."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "Enter a whole number."
    if kind in ("float_parsing", "float_type"):
        return "Enter a number."
    if kind == "greater_than_equal":
        return f"Enter a number of at least {_number(ctx['ge'])}."
    if kind == "greater_than":
        return f"Enter a number above {_number(ctx['gt'])}."
    if kind == "less_than_equal":
        return f"Enter a number of at most {_number(ctx['le'])}."
    if kind == "less_than":
        return f"Enter a number below {_number(ctx['lt'])}."
    if kind.startswith("url"):
        return "Enter a full address starting with http:// or https://."
    # A validator's own ValueError already holds a sentence: use it, not pydantic's "Value error, ...".
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else str(error["msg"])
    return message[:1].upper() + message[1:].rstrip(".") + "."
