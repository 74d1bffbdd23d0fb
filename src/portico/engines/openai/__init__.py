"""The `openai` reply engine: any OpenAI-compatible chat-completions server (engine.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, HttpUrl, field_validator
from pydantic_core import PydanticCustomError

from portico.config import get_settings
from portico.engines.builtin import BuiltinEngine
from portico.engines.openai.engine import OpenAIEngine
from portico.engines.providers import Kind, Provider, ProviderConfig, Providers
from portico.kit.net import EngineAddressRefused, check_engine_host

__all__ = ["PROVIDER", "OpenAIConfig", "OpenAIEngine"]


class OpenAIConfig(ProviderConfig):
    type: Literal["openai"]
    base_url: str = ""
    model: str = Field(default="", max_length=200)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, le=100_000)
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Write-only (a secret): accepted here, stored encrypted, never returned.
    api_key: str | None = Field(default=None, max_length=500, repr=False)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value:
            # What can be checked without DNS, when the owner saves; the engine checks again, with
            # DNS, each time it connects (engine.py).
            try:
                check_engine_host(HttpUrl(value).host or "", get_settings().engine_hosts)
            except EngineAddressRefused as exc:
                raise PydanticCustomError("engine_address", "{reason}", {"reason": str(exc)}) from None
        return value


def checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    problems = []
    if not config.get("base_url"):
        problems.append("engine.base_url: say which OpenAI-compatible server to use.")
    if not config.get("model"):
        problems.append("engine.model: say which model to use.")
    return problems


def make(providers: Providers) -> OpenAIEngine:
    # The knowledge's best passages go to the model with each question: the built-in engine's index finds them.
    retriever = providers.engine("builtin")
    assert isinstance(retriever, BuiltinEngine)
    return OpenAIEngine(retriever=retriever)


PROVIDER = Provider(
    kind=Kind.REPLY,
    name="openai",
    config=OpenAIConfig,
    make=make,
    label="OpenAI-compatible",
    summary="OpenAI, vLLM, Ollama, llama.cpp, LM Studio…",
    secrets=("api_key",),
    address="base_url",
    checks=checks,
    form="engines/openai/form.html",
)
