"""Engines are registered here, in one place; adding one touches its module and this list.

Each engine is made on first use, not at import, and `close_engines` releases what they hold (the
openai engine's connection pools) when the app stops; the next use makes fresh ones, in whatever
event loop is running then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from portico.engines.base import Engine, EngineError, EngineRequest, Sources, Turn, Usage
from portico.engines.builtin import BuiltinEngine
from portico.engines.openai_compat import OpenAIEngine


class Registry(Mapping[str, Engine]):
    def __init__(self, makers: dict[str, Callable[[Registry], Engine]]) -> None:
        self._makers = makers
        self._made: dict[str, Engine] = {}

    def __getitem__(self, name: str) -> Engine:
        if name not in self._made:
            self._made[name] = self._makers[name](self)
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    async def aclose(self) -> None:
        made, self._made = self._made, {}
        for engine in made.values():
            await engine.aclose()


def _openai(engines: Registry) -> Engine:
    builtin = engines["builtin"]
    assert isinstance(builtin, BuiltinEngine)
    return OpenAIEngine(retriever=builtin)


ENGINES = Registry({"builtin": lambda _: BuiltinEngine(), "openai": _openai})


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise EngineError("engine_unknown", f"no engine called {name!r}", retryable=False) from None


async def close_engines() -> None:
    await ENGINES.aclose()


__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineRequest",
    "Sources",
    "Turn",
    "Usage",
    "close_engines",
    "get_engine",
]
