"""What every engine is: one small interface and one error type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from portico.kit.i18n import N_


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class EngineRequest:
    """One reply to write: the published version's configuration, the conversation so far, the prompt."""

    version_key: str
    instructions: str
    knowledge: str
    engine: dict[str, Any]
    prompt: str
    history: list[Turn] = field(default_factory=list)
    # The version's documents (issue 24): each one's name and extracted Markdown with page markers.
    documents: tuple[tuple[str, str], ...] = ()
    # The provider's secret fields (an API key), decrypted for this call only and only when the
    # configuration's host is the one they were saved with (engines/secrets.py); never logged.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Sources:
    """Where a reply came from: the knowledge sections it quotes (builtin) or was given (openai).
    `answered` is False when the engine found nothing in the knowledge to answer with: such
    questions feed the owner's unanswered report. An engine yields at most one, before its `Usage`."""

    titles: tuple[str, ...] = ()
    answered: bool = True


class EngineError(Exception):
    """An engine could not answer. `retryable` says whether trying again may help."""

    guest_message = N_("The assistant could not answer just now. Please try again in a moment.")

    def __init__(self, code: str, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retryable = retryable


class Engine(Protocol):
    name: str
    # Whether the engine is given the conversation so far (`EngineRequest.history`); when not,
    # the history is not read from the database.
    reads_history: bool

    def stream(self, request: EngineRequest) -> AsyncIterator[str | Sources | Usage]:
        """Yield the reply's text piece by piece, at most one `Sources`, then at most one `Usage`;
        raise `EngineError`."""
        ...

    async def aclose(self) -> None:
        """Release what the engine holds (connection pools) when the app stops."""
        ...


def count_tokens(text: str) -> int:
    """A model-free estimate (words and punctuation), for engines that report no usage."""
    import re

    return len(re.findall(r"\w+|[^\w\s]", text))
