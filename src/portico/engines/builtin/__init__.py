"""The built-in reply engine: offline, answers from the assistant's knowledge (engine.py)."""

from __future__ import annotations

from typing import Any, Literal

from portico.engines.builtin.engine import NO_ANSWER, BuiltinEngine, KnowledgeIndex, Passage, compose, split_passages
from portico.engines.providers import Kind, Provider, ProviderConfig, Providers

__all__ = ["NO_ANSWER", "PROVIDER", "BuiltinEngine", "KnowledgeIndex", "Passage", "compose", "split_passages"]


class BuiltinConfig(ProviderConfig):
    type: Literal["builtin"]  # required: the tag that picks the engine


def checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    if not draft["knowledge"].strip() and not draft.get("documents"):
        return ["knowledge: the built-in engine answers only from the knowledge text and documents; add some."]
    return []


def make(providers: Providers) -> BuiltinEngine:
    return BuiltinEngine()


PROVIDER = Provider(
    kind=Kind.REPLY,
    name="builtin",
    config=BuiltinConfig,
    make=make,
    label="Built-in",
    summary="answers from the knowledge above, offline, no model needed.",
    checks=checks,
)
