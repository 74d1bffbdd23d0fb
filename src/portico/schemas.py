"""Pieces shared by every domain's schemas, and the rules every request's text and ids follow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from starlette.datastructures import UploadFile

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# Ids are PostgreSQL `integer`s: a larger number names nothing, and the driver would refuse to send
# it (SQLite's limit is int64). Out of range in a path is a 404, like any id that names nothing.
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

UNSTORABLE = "contains a character that cannot be stored (NUL or a lone surrogate)"


def unstorable(value: str) -> bool:
    """PostgreSQL refuses NUL in text; neither database can encode a lone surrogate (which JSON's
    `\\ud800` escape makes). Refused at the edge, naming the field, rather than by the driver."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _has_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(_has_unstorable(k) or _has_unstorable(v) for k, v in value.items())
    return False  # numbers, booleans, and nested models (which check their own fields)


class Storable(BaseModel):
    """Request bodies whose text can be stored: every string field, however nested, is checked."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if _has_unstorable(value):
            raise ValueError(UNSTORABLE)
        return value


class Strict(Storable):
    """Request bodies: unknown fields are refused, and types are not coerced from strings."""

    model_config = ConfigDict(extra="forbid", strict=True)


async def storable_parameters(request: Request) -> None:
    """The same rule for what no body model sees: path and query parameters and form fields.

    An app-wide dependency, so it runs before any route's own dependencies reach the database."""
    fields: list[tuple[str, str, str]] = [("path", k, v) for k, v in request.path_params.items()]
    fields += [("query", k, v) for k, v in request.query_params.multi_items()]
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        # FastAPI or the CSRF check parse the form anyway; Starlette keeps the parsed form.
        form = await request.form()
        fields += [("body", k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
    errors = [
        {"type": "value_error", "loc": (where, name), "msg": UNSTORABLE, "input": None}
        for where, name, value in fields
        if unstorable(name) or unstorable(value)
    ]
    if errors:
        raise RequestValidationError(errors)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
