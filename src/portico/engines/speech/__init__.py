"""Speech providers (issue 23): speech to text `builtin` (offline, English) and `openai` (any
OpenAI-compatible audio server); text to speech `browser` (the guest's own voice, no server cost)
and `openai`, declared for the owner's settings (the guest side speaks them; engine.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from portico.engines.openai import OpenAIConfig
from portico.engines.providers import Kind, Provider, ProviderConfig, Providers
from portico.engines.speech.engine import BuiltinSpeech, OpenAISpeech, SpeechToText, Utterance, decode, speech_pool

__all__ = ["PROVIDERS", "SpeechToText", "Utterance", "decode", "speech_pool"]


class BuiltinSpeechConfig(ProviderConfig):
    type: Literal["builtin"]


class OpenAISpeechConfig(ProviderConfig):
    type: Literal["openai"]
    base_url: str = ""
    model: str = Field(default="whisper-1", max_length=200)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Write-only (a secret): accepted here, stored encrypted, never returned, sent only to base_url's host.
    api_key: str | None = Field(default=None, max_length=500, repr=False)

    # The engine's own check of the address, without DNS, when the owner saves.
    _http_url = field_validator("base_url")(OpenAIConfig._http_url.__func__)  # type: ignore[attr-defined]


class BrowserVoiceConfig(ProviderConfig):
    type: Literal["browser"]


def openai_checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    problems = []
    if not config.get("base_url"):
        problems.append("voice.speech_to_text.base_url: say which OpenAI-compatible audio server to use.")
    if not config.get("model"):
        problems.append("voice.speech_to_text.model: say which speech-to-text model to use.")
    return problems


def builtin_checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    language = draft["settings"].get("language")
    if language not in (None, "en"):
        return [
            "voice.speech_to_text: the built-in speech-to-text hears English only; "
            "choose an OpenAI-compatible audio server for this assistant's language."
        ]
    return []


class _Nothing:
    """Text to speech happens in the guest's browser or between it and the audio server: nothing to hold here."""

    async def aclose(self) -> None:
        pass


def _nothing(providers: Providers) -> _Nothing:
    return _Nothing()


PROVIDERS = [
    Provider(
        kind=Kind.SPEECH_TO_TEXT,
        name="builtin",
        config=BuiltinSpeechConfig,
        make=lambda providers: BuiltinSpeech(),
        label="Built-in",
        summary="Whisper tiny.en, offline, English only.",
        checks=builtin_checks,
    ),
    Provider(
        kind=Kind.SPEECH_TO_TEXT,
        name="openai",
        config=OpenAISpeechConfig,
        make=lambda providers: OpenAISpeech(),
        label="OpenAI-compatible",
        summary="OpenAI, Speaches, LocalAI, vLLM, whisper.cpp…",
        secrets=("api_key",),
        address="base_url",
        checks=openai_checks,
    ),
    Provider(
        kind=Kind.TEXT_TO_SPEECH,
        name="browser",
        config=BrowserVoiceConfig,
        make=_nothing,
        label="The guest's browser",
        summary="speechSynthesis, no server cost.",
    ),
]
