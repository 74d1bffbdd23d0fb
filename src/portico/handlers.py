"""One place that turns errors into responses: `{"error": {"code", "message"}}` for the API, a page
written for a person for the dashboard and the chat page."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portico.access.ratelimit import count_failed_secret
from portico.errors import ClientDisconnected, NotFound, PorticoError
from portico.kit.i18n import gettext
from portico.kit.logs import mark_logged
from portico.schemas import ErrorResponse

log = logging.getLogger("portico")

MAX_BODY_BYTES = 1024 * 1024

# Every error has the same shape; documented once for every route in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON",
        401: "Missing or invalid token",
        403: "Refused by the gate, or by your role in the team (forbidden_role)",
        404: "Not found (or not yours)",
        409: "Conflicts with the current state",
        413: "Body or message too large",
        422: "Invalid request",
        429: "Rate limited (see Retry-After)",
    }.items()
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if part not in ("body", "query", "path"))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = gettext("is not a known field")
    elif error["type"] == "missing":
        message = gettext("is required")
    elif error["type"] == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])  # the validator's own sentence, without "Value error, "
    return f"{location}: {message}" if location else message


def _field_name(error: Any) -> str:
    names = [part for part in error["loc"] if isinstance(part, str) and part not in ("body", "query", "path")]
    return names[-1] if names else ""


# Enough to fix a form by; a body with 10,000 bad entries does not get a 10,000-line answer.
MAX_PROBLEMS = 20


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    if any(e["loc"][:1] == ("path",) for e in errors):
        # `/assistants/abc` or an id past the database's range names nothing: not found, like an unknown id.
        return await _portico_error(request, NotFound(gettext("There is nothing at this address.")))
    if _wants_page(request):
        from portico.web.forms import sentence

        problems = [sentence(e, _field_name(e)) for e in errors[:3]]
        return _error_page(request, 422, "Something in this form is not right. " + " ".join(problems))
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "The request body is not valid JSON.")
    described = [_describe(e) for e in errors[:MAX_PROBLEMS]]
    more = f" ({len(errors)} problems in all)" if len(errors) > 5 else ""
    return error_response(422, "invalid_request", "; ".join(described[:5]) + more, details=described)


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if "/preview/sessions" in path:
        return False  # the preview's own script calls these and reads JSON
    return path.startswith(("/dashboard", "/c/")) or path == "/c"


def _error_page(request: Request, status: int, message: str) -> Response:
    from portico.web.forms import render

    if status == 303:
        return RedirectResponse(f"/dashboard/sign-in?next={quote(request.url.path)}", status_code=303)
    titles = {404: "Not found", 403: "Not allowed", 429: "Please wait", 500: "Something went wrong"}
    context = {"title": titles.get(status, "Something went wrong"), "message": message, "status": status}
    return render(request, "error.html", context, status=status)


async def _portico_error(request: Request, exc: PorticoError) -> Response:
    await count_failed_secret(request, exc)
    if _wants_page(request):
        response = _error_page(request, exc.status, exc.message)
    else:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
    # A 429 says when to come back (access/ratelimit.py's RateLimited).
    retry_after: int | None = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if _wants_page(request) and exc.status_code in (404, 405):
        return _error_page(request, 404, gettext("There is nothing at this address."))
    if exc.status_code == 400 and "json" in request.headers.get("content-type", ""):
        # FastAPI's answer to a JSON body it cannot decode (not UTF-8): the same as any malformed JSON.
        return error_response(400, "malformed_json", "The request body is not valid JSON (it must be UTF-8).")
    codes = {
        400: "malformed_body",
        404: "not_found",
        405: "method_not_allowed",
        408: "request_timeout",
        413: "body_too_large",
    }
    messages = {
        400: "The request body could not be read.",
        408: "The request body stopped arriving, so the connection is closed.",
        404: gettext("There is nothing at this address."),
        405: "This method is not allowed here.",
        413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
    }
    code = codes.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, messages.get(exc.status_code, str(exc.detail)))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: Starlette names only the first route that matched the path,
    and FastAPI makes one route per method."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # With its traceback (kit/logs.py redacts keys and tokens from it), and only here: the server
    # would log it again when Starlette re-raises it after this answer.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    mark_logged(exc)
    message = gettext("Something went wrong on our side. Please try again.")
    if _wants_page(request):
        return _error_page(request, 500, message)
    return error_response(500, "internal_error", message)


async def _pool_exhausted(request: Request, exc: PoolTimeout) -> Response:
    # Every connection of this process's pool was busy for PORTICO_DB_POOL_TIMEOUT: say so, and when to retry.
    log.warning("database pool exhausted: answering 503 busy")
    response = error_response(503, "busy", gettext("The server is busy right now. Please try again in a moment."))
    response.headers["Retry-After"] = "1"
    return response


async def _client_gone(request: Request, exc: ClientDisconnected) -> Response:
    # Not an error of ours: the reply was stopped and saved as `disconnected`. Nobody reads this.
    return Response(status_code=499)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PoolTimeout, _pool_exhausted)  # type: ignore[arg-type]  # Starlette types handlers loosely
    app.add_exception_handler(ClientDisconnected, _client_gone)  # type: ignore[arg-type]  # Starlette types handlers loosely
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(PorticoError, _portico_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


# Dashboard forms may carry a 1 MiB knowledge upload beside the 1 MiB knowledge text box.
DASHBOARD_BODY_BYTES = 3 * 1024 * 1024
# Document uploads (documents/api.py), several files at once.
UPLOAD_BODY_BYTES = 200 * 1024 * 1024
_DOCUMENTS = re.compile(r"^/api/v1/assistants/\d+/documents(?:/\d+)?$")
# A guest's recording: its route reads it under its own limit (`voice_max_bytes`, chat/voice.py), so the
# guest is told in seconds and in their language; this only bounds what that route is ever sent.
AUDIO_BODY_BYTES = 100_000_000 + 1


class BodyLimit:
    """Refuses request bodies over a limit with 413, before any route reads them, and bodies that
    stop arriving (a client holding the connection open with half a body) with 408 after
    `request_timeout` seconds without a byte. (Headers that never end are the server's and the
    reverse proxy's to time out: docs/deploy.md.)"""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, request_timeout: float = 30.0) -> None:
        self.app = app
        self.default_max = max_bytes
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        max_bytes = (
            DASHBOARD_BODY_BYTES
            if path.startswith("/dashboard/")
            else AUDIO_BODY_BYTES
            if path.endswith("/utterances")
            else self.default_max
        )
        if _DOCUMENTS.match(path):
            # Several files of up to 20 MB each (PORTICO_DOCUMENT_MAX_BYTES, checked per file).
            max_bytes = UPLOAD_BODY_BYTES
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, receive, send, max_bytes)
            return
        seen = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:
                # After the body, what comes is the client's going away: no time limit on that.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.request_timeout)
            except TimeoutError:
                raise _BodyTimeout() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send, max_bytes)
        except _BodyTimeout:
            response = error_response(
                408, "request_timeout", f"The request body stopped arriving for {self.request_timeout:g} seconds."
            )
            response.headers["Connection"] = "close"
            await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        limit = f"{max_bytes // 1024} KiB"
        response = error_response(413, "body_too_large", f"The request body is larger than {limit}.")
        await response(scope, receive, send)


class _BodyTimeout(HTTPException):
    # An HTTPException for the same reason as _BodyTooLarge; answered by _http_error when a route
    # was reading the body, and here otherwise.
    def __init__(self) -> None:
        super().__init__(status_code=408, headers={"Connection": "close"})


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error while reading a body into a 400.
    def __init__(self) -> None:
        super().__init__(status_code=413)
