"""Domain errors carry their own code, HTTP status and a sentence a person understands.

Services raise them; one handler renders them (see `handlers.py`). Routes never build error
responses themselves.
"""

from __future__ import annotations

from typing import Any


class PorticoError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class NotFound(PorticoError):
    status = 404
    code = "not_found"
    message = "Nothing was found here."


class AuthRequired(PorticoError):
    status = 401
    code = "auth_required"
    message = "This needs a token: send it as 'Authorization: Bearer <token>'."


class InvalidToken(PorticoError):
    status = 401
    code = "invalid_token"
    message = "This token is not valid (mistyped, revoked or for something else)."


class InvalidRequest(PorticoError):
    status = 422
    code = "invalid_request"
    message = "The request is not valid."

    def __init__(self, message: str | None = None, *, details: Any = None, field: str | None = None) -> None:
        super().__init__(message, details=details)
        # The parameter at fault, for a dashboard form to show its own sentence beside that field.
        self.field = field


class Conflict(PorticoError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class LimitReached(PorticoError):
    status = 409
    code = "limit_reached"
    message = "A limit was reached."


class ClientDisconnected(Exception):
    """The client left before its answer was ready: nobody is there to read a response."""
