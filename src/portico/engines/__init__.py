"""Engines are registered here, in one place; adding one touches its module and this list."""

from __future__ import annotations

from portico.engines.base import Engine, EngineError, EngineRequest, Turn, Usage
from portico.engines.builtin import BuiltinEngine
from portico.engines.openai_compat import OpenAIEngine

_builtin = BuiltinEngine()
ENGINES: dict[str, Engine] = {engine.name: engine for engine in (_builtin, OpenAIEngine(retriever=_builtin))}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise EngineError("engine_unknown", f"no engine called {name!r}", retryable=False) from None


__all__ = ["ENGINES", "Engine", "EngineError", "EngineRequest", "Turn", "Usage", "get_engine"]
