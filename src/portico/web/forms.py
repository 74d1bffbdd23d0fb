"""Dashboard forms: CSRF protection, rendering with the signed-in owner, redirects, and the
sentences shown next to a field when the API's own pydantic model refuses what was typed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any, TypeVar, get_args

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_core.core_schema import ErrorType

from portico.errors import PorticoError
from portico.schemas import UNSTORABLE
from portico.web.pages import templates

CSRF_COOKIE = "portico_csrf"
SESSION_COOKIE = "portico_session"


class CsrfFailed(PorticoError):
    status = 403
    code = "csrf_failed"
    message = (
        "This form is out of date (you signed in or out since it was shown) or came from another site. "
        "Go back, reload the page and try again."
    )


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.base_url.startswith("https://")


def signed_in(request: Request, token: str, next_url: str) -> Response:
    """Redirect to `next_url` carrying the new sign-in session's cookie.

    The forms' token changes with it (`csrf_token`): a form shown before signing in is refused after."""
    response = redirect(next_url)
    # The signed-out token is done with; a new one is made after signing out.
    response.delete_cookie(CSRF_COOKIE, path="/")
    days = request.app.state.settings.session_days
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=days * 86400,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    return response


def session_csrf(session_token: str) -> str:
    """A signed-in browser's forms token: made from its sign-in session's token (HttpOnly, never
    sent in a form), so it belongs to that session alone and changes at every sign-in. Labelled,
    so it is not the digest the database keeps of the session."""
    return hashlib.sha256(b"portico-csrf:" + session_token.encode()).hexdigest()


def csrf_token(request: Request) -> str:
    """The token each form carries: the sign-in session's (`session_csrf`); before signing in, a
    double-submit one, the same random value in an HttpOnly cookie and in the form."""
    if not hasattr(request.state, "csrf"):
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            request.state.csrf = session_csrf(session)
        else:
            request.state.csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    token: str = request.state.csrf
    return token


async def check_csrf(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    sent = str(form.get("csrf", ""))
    session = request.cookies.get(SESSION_COOKIE)
    # A token from before signing in, or from another sign-in, is not this session's.
    expected = session_csrf(session) if session else request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    *,
    page_url: str | None = None,
) -> HTMLResponse:
    """A dashboard page. A form that failed is answered with its page again (what was typed, the
    errors beside the fields) at its POST address; `page_url` is the page's own address, which
    dashboard.js puts in the address bar so that a reload asks for the page, not the POST again."""
    token = csrf_token(request)
    member = getattr(request.state, "member", None)
    context = {
        "csrf": token,
        "owner": member,
        "member": member,
        "teams": getattr(request.state, "teams", []),
        "page_url": page_url if request.method == "POST" else None,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, context, status_code=status)
    if not request.cookies.get(SESSION_COOKIE) and request.cookies.get(CSRF_COOKIE) != token:
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
        # The context tells fields checked from a registry (engines/providers.py `ConfigOf`) too.
        return model.model_validate(data, strict=False, context={"strict": False})
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
        errors.setdefault(field, (sentences or {}).get(field) or sentence(error, field))
    return errors


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


# What each form field is called in a sentence, by its name in the form (the same name means the
# same thing on every form). A field not here is "this field".
FIELD_LABELS: dict[str, str] = {
    "name": "the name",
    "description": "the description",
    "greeting": "the greeting",
    "instructions": "the instructions",
    "knowledge": "the knowledge",
    "engine_type": "the engine",
    "base_url": "the server URL",
    "model": "the model",
    "api_key": "the API key",
    "temperature": "the creativity",
    "max_tokens": "the response length",
    "timeout": "the timeout",
    "inactivity_timeout": "the inactivity timeout",
    "max_duration": "the maximum duration",
    "max_message_length": "the maximum message length",
    "messages_per_session": "messages per session",
    "sessions_per_day": "sessions per day",
    "tokens_per_day": "tokens per day",
    "retention_days": "the number of days to keep sessions",
    "allowed_domains": "the list of websites",
    "max_sessions": "the maximum sessions",
    "access_code": "the access code",
    "status": "the status",
    "mode": "who can use the assistant",
    "confirm_name": "the name you typed",
    "email": "the email address",
    "password": "the password",
    "current": "the current password",
    "new": "the new password",
}
# The unit a number is counted in, said after it ("at least 30 seconds").
FIELD_UNITS: dict[str, str] = {
    "timeout": "seconds",
    "inactivity_timeout": "seconds",
    "max_duration": "seconds",
    "max_message_length": "characters",
    "max_tokens": "tokens",
    "retention_days": "days",
}
# pydantic's own error types: their messages are the library's words and never reach a page. Any
# other type is one of ours (a PydanticCustomError), whose message is already a sentence.
PYDANTIC_ERRORS = frozenset(get_args(ErrorType))


def sentence(error: ErrorDetails, field: str = "") -> str:
    """What pydantic found wrong, said in Portico's words about the field (its label and unit)."""
    kind, ctx = error["type"], error.get("ctx", {})
    label = FIELD_LABELS.get(field, "this field")
    unit = f" {FIELD_UNITS[field]}" if field in FIELD_UNITS else ""
    said = {
        "string_too_short": f"{label} must have at least {_number(ctx.get('min_length'))} characters",
        "string_too_long": f"{label} can be at most {_number(ctx.get('max_length'))} characters",
        "too_long": f"{label} can have at most {_number(ctx.get('max_length'))} entries",
        "int_parsing": f"{label} must be a whole number",
        "int_type": f"{label} must be a whole number",
        "int_from_float": f"{label} must be a whole number",
        "float_parsing": f"{label} must be a number",
        "float_type": f"{label} must be a number",
        "greater_than_equal": f"{label} must be at least {_number(ctx.get('ge'))}{unit}",
        "greater_than": f"{label} must be more than {_number(ctx.get('gt'))}{unit}",
        "less_than_equal": f"{label} can be at most {_number(ctx.get('le'))}{unit}",
        "less_than": f"{label} must be less than {_number(ctx.get('lt'))}{unit}",
        "bool_parsing": f"{label} must be on or off",
        "bool_type": f"{label} must be on or off",
    }
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length", 1) <= 1):
        text = f"{label} cannot be empty"
    elif kind in said:
        text = said[kind]
    elif kind.startswith("url"):
        text = f"{label} must be a full address starting with http:// or https://"
    elif kind in ("enum", "literal_error", "union_tag_invalid", "union_tag_not_found"):
        text = f"choose one of the choices offered for {label}"
    elif UNSTORABLE in str(error.get("msg", "")):
        text = f"{label} {UNSTORABLE}"
    elif kind == "value_error" and "error" in ctx:
        # A validator's own ValueError holds our sentence: use it, not pydantic's "Value error, ...".
        text = str(ctx["error"])
    elif kind not in PYDANTIC_ERRORS:
        text = str(error["msg"])
    else:
        text = f"{label} is not valid"
    return text[:1].upper() + text[1:].rstrip(".") + "."
