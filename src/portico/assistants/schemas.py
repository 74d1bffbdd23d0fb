from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from portico.access.codes import MAX_LENGTH as MAX_CODE
from portico.access.codes import MIN_LENGTH as MIN_CODE
from portico.access.schemas import Expiry
from portico.engines import PROVIDERS, Kind
from portico.engines.providers import ConfigOf, ViewOf
from portico.kit.i18n import LANGUAGES
from portico.schemas import Name, Strict
from portico.teams.schemas import AuditEntryOut
from portico.vocabulary import ShareMode, Status
from portico.widget.domains import normalise_all

KNOWLEDGE_MAX = 1_000_000
# Starter questions: buttons a guest may click before the first message (issue 14).
STARTERS_MAX = 4
STARTER_MAX = 200


class SessionSettings(Strict):
    inactivity_timeout: int = Field(
        default=600, ge=30, le=86_400, description="Seconds without a message before a session ends."
    )
    max_duration: int = Field(default=3_600, ge=60, le=604_800, description="Seconds after which a session ends.")
    max_message_length: int = Field(default=4_000, ge=1, le=100_000, description="Characters in one guest message.")
    language: str | None = Field(
        default=None,
        description="The guest pages' language when the link names none (`en`, `de`, `fr`, `es`); "
        "null: the guest's browser decides.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _shipped_language(cls, value: object) -> object:
        if value == "":
            return None  # the Behavior form's "the guest's browser decides"
        if value is not None and (not isinstance(value, str) or value.lower() not in LANGUAGES):
            choices = ", ".join(sorted(LANGUAGES))
            raise PydanticCustomError("language", "Choose one of {choices}, or null.", {"choices": choices})
        return value.lower() if isinstance(value, str) else value


class Quotas(Strict):
    """The owner's caps on use, applied at once without Publish (0 = unlimited)."""

    messages_per_session: int = Field(
        default=0, ge=0, le=1_000_000, description="Guest messages in one session; 0 = unlimited."
    )
    sessions_per_day: int = Field(
        default=0, ge=0, le=100_000_000, description="Guest sessions started per UTC day; 0 = unlimited."
    )
    tokens_per_day: int = Field(
        default=0, ge=0, le=2_000_000_000, description="Reply tokens (in + out) per UTC day; 0 = unlimited."
    )


# One of the registered reply engines' configurations, picked by `type` (engines/providers.py);
# the view shows its public fields and `has_<secret>` for its secrets.
EngineConfig = Annotated[Any, ConfigOf(PROVIDERS, Kind.REPLY)]
EngineOut = Annotated[dict[str, Any], ViewOf(PROVIDERS, Kind.REPLY)]
SpeechToTextConfig = Annotated[Any, ConfigOf(PROVIDERS, Kind.SPEECH_TO_TEXT)]
SpeechToTextOut = Annotated[dict[str, Any], ViewOf(PROVIDERS, Kind.SPEECH_TO_TEXT)]


class VoiceFields(Strict):
    """How guests may talk to the assistant (issue 23), published with the version like the greeting."""

    input: bool = Field(default=False, description="Guests may speak their messages.")
    turn_end: Literal["silence", "press"] = Field(
        default="silence",
        description="How a guest's turn ends: `silence` (detected in the browser after `silence_ms`) "
        "or `press` (a second press, or `press_seconds` after the first).",
    )
    silence_ms: int = Field(default=800, ge=200, le=3_000, description="Milliseconds of silence that end a turn.")
    press_seconds: int = Field(default=10, ge=1, le=10, description="Seconds a press-to-send turn lasts at most.")
    spoken_replies: bool = Field(default=False, description="Replies (and the greeting) are spoken to the guest.")
    voice_name: str = Field(default="", max_length=100, description="The voice replies are spoken in; empty: default.")


VOICE_DEFAULTS: dict[str, Any] = {**VoiceFields().model_dump(), "speech_to_text": {"type": "builtin"}}


class VoiceIn(VoiceFields):
    """Only the fields given change."""

    speech_to_text: SpeechToTextConfig | None = Field(
        default=None, description="Who turns speech into text: `builtin` (offline, English) or `openai`."
    )


class VoiceOut(VoiceFields):
    speech_to_text: SpeechToTextOut


def _starter(value: str) -> str:
    # Trimmed, since a guest sees it on a button and sends it as typed.
    value = value.strip()
    if not value:
        raise ValueError("a starter question cannot be blank")
    if len(value) > STARTER_MAX:
        raise ValueError(f"a starter question has at most {STARTER_MAX} characters")
    return value


Starter = Annotated[str, AfterValidator(_starter)]


class DraftFields(Strict):
    instructions: str | None = Field(default=None, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=2_000)
    greeting_enabled: bool | None = None
    knowledge: str | None = Field(default=None, max_length=KNOWLEDGE_MAX)
    engine: EngineConfig | None = None
    settings: SessionSettings | None = None
    voice: VoiceIn | None = None
    starters: list[Starter] | None = Field(
        default=None,
        max_length=STARTERS_MAX,
        description=f"At most {STARTERS_MAX} questions of 1 to {STARTER_MAX} characters; [] removes them all.",
    )


class AssistantCreate(DraftFields):
    name: Name
    description: str = Field(default="", max_length=2_000)


class AssistantUpdate(DraftFields):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2_000)
    # Not versioned: what Logs keep applies at once.
    retention_days: int | None = Field(default=None, ge=0, le=3_650, description="Days to keep sessions; 0 = forever.")
    store_transcripts: bool | None = None
    quotas: Quotas | None = Field(default=None, description="Only the quotas given change.")
    allowed_domains: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=200, description="Websites that may embed the widget; empty = any."
    )

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else normalise_all(value)


class DraftOut(BaseModel):
    instructions: str
    greeting: str
    greeting_enabled: bool
    knowledge: str
    engine: EngineOut
    settings: SessionSettings
    voice: VoiceOut
    starters: list[str]


class AssistantOut(BaseModel):
    id: int
    public_id: str
    name: str
    description: str
    status: Status
    share_mode: ShareMode
    published_version: int | None
    has_unpublished_changes: bool
    public_url: str
    widget_id: str = Field(description="The embed code's `data-assistant`; rotating the public link leaves it alone.")
    has_access_code: bool
    public_link_expires_at: datetime | None
    retention_days: int
    store_transcripts: bool
    allowed_domains: list[str]
    quotas: Quotas
    created_at: datetime
    updated_at: datetime
    draft: DraftOut


class AssistantList(BaseModel):
    items: list[AssistantOut]


class PublishOut(BaseModel):
    version: int
    published_at: datetime


class VersionOut(BaseModel):
    version: int
    published_at: datetime
    current: bool


class VersionList(BaseModel):
    items: list[VersionOut]


# A strict body still takes an enum by its value ("live"), as JSON and forms send it.
StatusValue = Annotated[Status, Field(strict=False)]
ShareModeValue = Annotated[ShareMode, Field(strict=False)]


class StatusIn(Strict):
    status: StatusValue


def _access_code(value: str) -> str:
    if not MIN_CODE <= len(value) <= MAX_CODE:
        raise ValueError(f"an access code has {MIN_CODE} to {MAX_CODE} characters")
    if not value.strip():
        raise ValueError("an access code cannot be only spaces")
    return value


AccessCode = Annotated[str, AfterValidator(_access_code)]


class ShareIn(Strict):
    """Public or private. Left out, the access code and the public link's end stay as they are;
    null removes them. The code is stored as a hash and never shown again."""

    mode: ShareModeValue
    access_code: AccessCode | None = Field(
        default=None, description=f"{MIN_CODE} to {MAX_CODE} characters; null removes it (public link and widget)."
    )
    public_link_expires_at: Expiry | None = None


class DiffLineOut(BaseModel):
    kind: Literal["same", "added", "removed", "skipped", "hidden"] = Field(
        description="`skipped`: `count` unchanged lines not shown; `hidden`: `count` more lines past the limit."
    )
    text: str
    count: int


class ChangeOut(BaseModel):
    field: str = Field(description="`knowledge`, `starters`, `settings.language`, `engine.model`, `engine.api_key`...")
    label: str
    lines: list[DiffLineOut] = Field(description="A line diff, for texts and starter questions; else empty.")
    before: str | None
    after: str | None
    note: str | None = Field(description='For secrets: "API key changed" (never the key).')


class DraftDiffOut(BaseModel):
    published_version: int | None
    has_changes: bool = Field(description="Whether a Publish would change what guests get.")
    changes: list[ChangeOut]
    edits: list[AuditEntryOut] = Field(description="Who edited the draft since the last Publish, newest first.")
