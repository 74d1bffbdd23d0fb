from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from portico.schemas import MAX_ID, Name, Strict

# An invitation or a role change never makes an Owner: ownership moves only by a transfer.
GrantableRole = Literal["admin", "editor"]


class MemberOut(BaseModel):
    id: int = Field(description="The member's account id.")
    email: str
    role: Literal["owner", "admin", "editor"]
    joined_at: datetime


class TeamOut(BaseModel):
    id: int
    name: str
    role: Literal["owner", "admin", "editor"] = Field(description="Your role in this team.")
    members: list[MemberOut]


class TeamUpdate(Strict):
    name: Name


class RoleIn(Strict):
    role: GrantableRole


class TransferIn(Strict):
    member_id: int = Field(ge=1, le=MAX_ID, description="The account id of the member who becomes the Owner.")


class InvitationIn(Strict):
    role: GrantableRole


class InvitationOut(BaseModel):
    id: int
    role: GrantableRole
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationOut):
    invitation_url: str = Field(description="Shown once: the secret is in the fragment and stored only as a digest.")


class InvitationList(BaseModel):
    items: list[InvitationOut]


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None = Field(description="The member's account id; null for the operator (command line).")
    actor: str
    action: str
    assistant_id: int | None
    assistant: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")
