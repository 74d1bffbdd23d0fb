"""The built-in engine: answers offline from the assistant's knowledge, quoting the sentences that answer.

The knowledge is indexed once per published version (versions never change, so the index is
cached by the version's digest; engines/knowledge.py says how questions find passages), and the
answer is Markdown: the answering sentences or list items of the best passage, and of a second
only when it is nearly as good and says something the first does not. The titles of the sections quoted come with it as `Sources`.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import AsyncIterator

from portico.engines.base import EngineRequest, Sources, Usage, count_tokens
from portico.engines.knowledge import Hit, KnowledgeIndex, Passage, Unit, split_passages
from portico.engines.lexicon import small_talk
from portico.kit.i18n import N_, gettext

__all__ = ["NO_ANSWER", "BuiltinEngine", "KnowledgeIndex", "Passage", "compose", "split_passages"]

NO_ANSWER = N_(
    "I'm sorry, I don't have an answer to that in what I know. Try asking in other words, or about something else."
)


def compose(hits: list[Hit]) -> str:
    """The answer in Markdown: each passage's sentences as a paragraph, its list items as a list,
    its tables as tables."""
    if not hits:
        return gettext(NO_ANSWER)
    return "\n\n".join(_markdown(hit.units) for hit in hits)


def _markdown(units: tuple[Unit, ...]) -> str:
    blocks: list[str] = []
    previous: Unit | None = None
    for unit in units:
        if unit.table:
            blocks.append(unit.text)
        elif unit.item:
            line = f"{unit.marker} {unit.text}"
            if previous is not None and previous.item:
                blocks[-1] += "\n" + line
            else:
                blocks.append(line)
        elif previous is not None and not previous.item and not previous.table:
            blocks[-1] += " " + unit.text
        else:
            blocks.append(unit.text)
        previous = unit
    return "\n\n".join(blocks)


class BuiltinEngine:
    name = "builtin"
    # Each question is answered from the knowledge alone.
    reads_history = False

    def __init__(self, cache_size: int = 64) -> None:
        self._indexes: OrderedDict[str, KnowledgeIndex] = OrderedDict()
        self._cache_size = cache_size
        self._building: dict[str, asyncio.Future[KnowledgeIndex]] = {}

    async def index_for(self, request: EngineRequest) -> KnowledgeIndex:
        key = request.version_key
        if key in self._indexes:
            self._indexes.move_to_end(key)
            return self._indexes[key]
        if key not in self._building:
            # Build off the event loop, once, however many messages arrive meanwhile.
            self._building[key] = asyncio.ensure_future(
                asyncio.to_thread(KnowledgeIndex, request.knowledge, request.documents)
            )
        try:
            index = await asyncio.shield(self._building[key])
        finally:
            self._building.pop(key, None)
        self._indexes[key] = index
        while len(self._indexes) > self._cache_size:
            self._indexes.popitem(last=False)
        return index

    async def aclose(self) -> None:
        # Its indexes are plain memory, dropped with the engine.
        return None

    async def stream(self, request: EngineRequest) -> AsyncIterator[str | Sources | Usage]:
        index = await self.index_for(request)
        friendly = small_talk(request.prompt)
        hits = [] if friendly else index.answers(request.prompt)
        answer = gettext(friendly) if friendly else compose(hits)
        for piece in re.findall(r"\S+\s*|\s+", answer):
            yield piece
        titles = tuple(dict.fromkeys(hit.passage.source for hit in hits if hit.passage.source))
        yield Sources(titles=titles, answered=bool(hits or friendly))
        yield Usage(tokens_in=count_tokens(request.prompt), tokens_out=count_tokens(answer))
