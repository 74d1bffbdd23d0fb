from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from portico.schemas import Name, Strict

MAX_SESSIONS_CAP = 1_000_000
MaxSessions = Annotated[int, Field(ge=0, le=MAX_SESSIONS_CAP, description="0 means unlimited.")]


class LinkIn(Strict):
    name: Name
    max_sessions: MaxSessions = 0


class LinksCreate(Strict):
    links: list[LinkIn] = Field(min_length=1, max_length=10_000)


class LinkUpdate(Strict):
    name: Name | None = None
    max_sessions: MaxSessions | None = None

    @model_validator(mode="after")
    def _something(self) -> LinkUpdate:
        if self.name is None and self.max_sessions is None:
            raise ValueError("give a new name, a new max_sessions, or both")
        return self


class LinkOut(BaseModel):
    id: int
    name: str
    max_sessions: int
    sessions_used: int
    sessions_left: int | None
    url: str
    revoked: bool
    created_at: datetime
    last_used_at: datetime | None


class LinkCreated(BaseModel):
    items: list[LinkOut]


class LinkList(BaseModel):
    items: list[LinkOut]
    active: int
    limit: int
