from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from portico.schemas import Strict
from portico.vocabulary import Channel, EndReason, Role


class SessionStart(Strict):
    public_id: str | None = Field(default=None, max_length=200)
    key: str | None = Field(default=None, max_length=1_000)
    channel: Literal[Channel.LINK, Channel.WIDGET, Channel.API] = Channel.LINK
    origin: str | None = Field(default=None, max_length=300, description="The embedding page's origin (widget).")

    @model_validator(mode="after")
    def _public_id_or_key(self) -> SessionStart:
        if self.public_id is None and self.key is None:
            raise ValueError("give public_id, key, or both")
        return self


class AssistantBrief(BaseModel):
    public_id: str
    name: str
    description: str


class LinkBrief(BaseModel):
    name: str
    sessions_left: int | None
    uses_message: str | None = Field(description="What the guest reads about the link's sessions left, if capped.")


class SessionStarted(BaseModel):
    session_id: int
    token: str
    greeting: str
    assistant: AssistantBrief
    link: LinkBrief | None


class MessageIn(Strict):
    content: str = Field(min_length=1, max_length=200_000)

    @model_validator(mode="after")
    def _not_blank(self) -> MessageIn:
        if not self.content.strip():
            raise ValueError("write something: the message is empty")
        return self


class MessageOut(BaseModel):
    id: int
    role: Role
    content: str | None
    created_at: datetime
    error_code: str | None


class ReplyOut(BaseModel):
    message_id: int
    content: str
    tokens_in: int
    tokens_out: int


class Lookup(Strict):
    public_id: str | None = Field(default=None, max_length=200)
    key: str | None = Field(default=None, max_length=1_000)
    count: bool = Field(
        default=False,
        description="Count a refusal in the owner's Metrics: the chat page asks so on its first lookup of a page load.",
    )

    @model_validator(mode="after")
    def _public_id_or_key(self) -> Lookup:
        if self.public_id is None and self.key is None:
            raise ValueError("give public_id, key, or both")
        return self


class LookupOut(BaseModel):
    assistant: AssistantBrief
    link: LinkBrief | None
    greeting: str


class SessionState(BaseModel):
    session_id: int
    state: Literal["active", "ended"]
    end_reason: EndReason | None
    end_message: str | None = Field(description="What the guest reads about the ending, when the session has ended.")
    channel: Channel
    started_at: datetime
    ended_at: datetime | None
    greeting: str
    assistant: AssistantBrief
    link: LinkBrief | None
    messages: list[MessageOut]
