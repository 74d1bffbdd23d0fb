"""The providers, registered here in one place: adding one is its folder and one line below.

Each is made on first use, not at import, and `close_engines` releases what they hold (the openai
engine's connection pools) when the app stops; the next use makes fresh ones, in whatever event
loop is running then.
"""

from __future__ import annotations

from portico.engines import builtin, openai, speech
from portico.engines.base import Engine, EngineError, EngineRequest, Sources, Turn, Usage
from portico.engines.providers import Kind, Provider, ProviderConfig, Providers

PROVIDERS = Providers(
    [
        builtin.PROVIDER,
        openai.PROVIDER,
        *speech.PROVIDERS,
    ]
)


def get_engine(name: str) -> Engine:
    return PROVIDERS.engine(name)


async def close_engines() -> None:
    await PROVIDERS.aclose()


__all__ = [
    "PROVIDERS",
    "Engine",
    "EngineError",
    "EngineRequest",
    "Kind",
    "Provider",
    "ProviderConfig",
    "Providers",
    "Sources",
    "Turn",
    "Usage",
    "close_engines",
    "get_engine",
]
