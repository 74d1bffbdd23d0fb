from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field, model_validator

from portico.schemas import Name, Strict

MAX_SESSIONS_CAP = 1_000_000
MaxSessions = Annotated[int, Field(ge=0, le=MAX_SESSIONS_CAP, description="0 means unlimited.")]
BULK_MAX = 10_000
# A link's state: the first of the gate's link rows that holds (docs/design.md), or active.
LinkState = Literal["active", "paused", "expired", "exhausted", "deleted"]
BulkAction = Literal["delete", "pause", "resume", "expire"]


# The earliest year an end date may be in: a date before it is a typing slip (year 1, year 20),
# not an end anyone meant. A recent past date is fine: it ends the link at once.
EARLIEST_YEAR = 2000


def _in_utc(value: datetime) -> datetime:
    if value.year < EARLIEST_YEAR:
        raise ValueError(
            f"the year {value.year} is long past, so this is not an end date; "
            f"give a date from the year {EARLIEST_YEAR} on (a date already past ends the link at once), or null for never"
        )
    # An offset that pushes the time past year 9999 cannot be stored (nor represented in UTC).
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date is too far in the future; use a year before 9999") from None


def _text_or_time(value: object) -> object:
    # Strict bodies take no strings for datetimes, and lax ones would take a number as seconds
    # since 1970: only ISO 8601 text (or a datetime from Python) is a date here.
    if not isinstance(value, str | datetime):
        raise ValueError("give the date as ISO 8601 text, like 2026-12-31T23:59:00+01:00")
    return value


# An end date with its offset ("2026-12-31T23:59:00+01:00"); without one the time would be
# ambiguous. A time already past ends the link at once. Stored in UTC.
Expiry = Annotated[
    AwareDatetime,
    BeforeValidator(_text_or_time),
    AfterValidator(_in_utc),
    Field(strict=False, description="ISO 8601 with an offset (Z or +01:00); null = never."),
]


class LinkIn(Strict):
    name: Name
    max_sessions: MaxSessions = 0


class LinksCreate(Strict):
    links: list[LinkIn] = Field(min_length=1, max_length=10_000)


class LinkUpdate(Strict):
    """Only the fields given change; `expires_at: null` removes the end date."""

    name: Name | None = None
    max_sessions: MaxSessions | None = None
    paused: bool | None = None
    expires_at: Expiry | None = None

    @model_validator(mode="after")
    def _something(self) -> LinkUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, max_sessions, paused, expires_at")
        for name in ("name", "max_sessions", "paused"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class LinksBulk(Strict):
    """One action on a selection of links: `expire` ends them at `expires_at` (default: now)."""

    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=BULK_MAX)
    action: BulkAction
    expires_at: Expiry | None = None

    @model_validator(mode="after")
    def _expiry_with_expire(self) -> LinksBulk:
        if self.expires_at is not None and self.action != "expire":
            raise ValueError("expires_at goes with the action expire")
        return self


class LinkOut(BaseModel):
    id: int
    name: str
    max_sessions: int
    sessions_used: int
    sessions_left: int | None
    url: str
    revoked: bool
    paused: bool
    expires_at: datetime | None
    state: LinkState
    created_at: datetime
    last_used_at: datetime | None


class LinkCreated(BaseModel):
    items: list[LinkOut]


class LinkList(BaseModel):
    items: list[LinkOut]
    active: int
    limit: int


class BulkDone(BaseModel):
    items: list[LinkOut]
