from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from portico.kit.i18n import gettext
from portico.models.message import COMMENT_MAX
from portico.schemas import Strict
from portico.vocabulary import Channel, EndReason, FeedbackReason, Rating, Role

ACCESS_CODE = Field(
    default=None,
    max_length=1_000,
    description="The public link's access code, when its owner set one (never needed with a key).",
)
WIDGET_ID = Field(
    default=None, max_length=200, description="The embed code's `data-assistant`: in place of public_id (widget)."
)


class Asking(Strict):
    """Who a guest asks for: a public id or a widget id, a private key, or a key with either."""

    public_id: str | None = Field(default=None, max_length=200)
    widget_id: str | None = WIDGET_ID
    key: str | None = Field(default=None, max_length=1_000)
    access_code: str | None = ACCESS_CODE

    @model_validator(mode="after")
    def _someone(self) -> Asking:
        if self.public_id is not None and self.widget_id is not None:
            raise ValueError("give public_id or widget_id, not both")
        if self.public_id is None and self.widget_id is None and self.key is None:
            raise ValueError("give public_id, widget_id or key")
        return self


class SessionStart(Asking):
    channel: Literal[Channel.LINK, Channel.WIDGET, Channel.API] | None = Field(
        default=None, description="`link` unless a widget_id is given (then `widget`)."
    )
    origin: str | None = Field(default=None, max_length=300, description="The embedding page's origin (widget).")

    @model_validator(mode="after")
    def _channel(self) -> SessionStart:
        if self.widget_id is not None and self.channel not in (None, Channel.WIDGET):
            raise ValueError("a widget_id starts a widget session: leave channel out or make it widget")
        if self.channel is None:
            self.channel = Channel.WIDGET if self.widget_id is not None else Channel.LINK
        return self


class AssistantBrief(BaseModel):
    public_id: str
    name: str
    description: str


class LinkBrief(BaseModel):
    name: str
    sessions_left: int | None
    uses_message: str | None = Field(description="What the guest reads about the link's sessions left, if capped.")


STARTERS = Field(description="Questions the guest may send with one click before the first message (at most 4).")


class SessionStarted(BaseModel):
    session_id: int
    token: str
    greeting: str
    starters: list[str] = STARTERS
    assistant: AssistantBrief
    link: LinkBrief | None
    max_message_length: int = Field(description="The most characters a guest message may have.")


class MessageIn(Strict):
    content: str = Field(min_length=1, max_length=200_000)

    @model_validator(mode="after")
    def _not_blank(self) -> MessageIn:
        if not self.content.strip():
            raise ValueError(gettext("write something: the message is empty"))
        return self


class MessageOut(BaseModel):
    id: int
    role: Role
    content: str | None
    created_at: datetime
    error_code: str | None
    sources: list[str] = Field(description="Replies: the knowledge sections the reply drew on.")
    answered: bool | None = Field(description="Replies: false when the knowledge had no answer; null for guests.")
    rating: Rating | None = Field(description="Replies: the guest's rating, if any.")
    reason: FeedbackReason | None
    comment: str | None
    audio_ms: int | None = Field(
        default=None, description="A spoken guest message: its recording's length in milliseconds; null if typed."
    )


# A strict body still takes an enum by its value ("up"), as JSON sends it.
RatingValue = Annotated[Rating, Field(strict=False)]
ReasonValue = Annotated[FeedbackReason, Field(strict=False)]


class FeedbackIn(Strict):
    rating: RatingValue
    reason: ReasonValue | None = None
    comment: str | None = Field(default=None, max_length=COMMENT_MAX, description=f"At most {COMMENT_MAX} characters.")


class FeedbackOut(BaseModel):
    message_id: int
    rating: Rating
    reason: FeedbackReason | None
    comment: str | None


class ReplyOut(BaseModel):
    message_id: int
    content: str
    tokens_in: int
    tokens_out: int


class UtteranceReplyOut(ReplyOut):
    heard: str = Field(description="The words heard in the recording: the guest's message.")
    audio_ms: int = Field(description="The recording's length in milliseconds.")


class Lookup(Asking):
    count: bool = Field(
        default=False,
        description="Count a refusal in the owner's Metrics: the chat page asks so on its first lookup of a page load.",
    )


class LookupOut(BaseModel):
    assistant: AssistantBrief
    link: LinkBrief | None
    greeting: str
    starters: list[str] = STARTERS
    max_message_length: int = Field(description="The most characters a guest message may have.")
    language: str | None = Field(
        default=None, description="The assistant's own language for its guest pages (`settings.language`), if set."
    )


class SessionState(BaseModel):
    session_id: int
    state: Literal["active", "ended"]
    end_reason: EndReason | None
    end_message: str | None = Field(description="What the guest reads about the ending, when the session has ended.")
    channel: Channel
    started_at: datetime
    ended_at: datetime | None
    greeting: str
    starters: list[str] = STARTERS
    assistant: AssistantBrief
    link: LinkBrief | None
    max_message_length: int = Field(description="The most characters a guest message may have.")
    messages: list[MessageOut]
