"""The built-in engine: answers offline from the assistant's knowledge by BM25 retrieval.

The knowledge text is split into passages (a Markdown section, or a paragraph of a long one),
indexed once per published version (versions never change, so the index is cached by the
version's digest), and the best passages are quoted back.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import bm25s
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from portico.engines.base import EngineRequest, Sources, Usage, count_tokens

NO_ANSWER = (
    "I'm sorry, I don't have an answer to that in what I know. Try asking in other words, or about something else."
)
MAX_SECTION = 900
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")
_stemmer = Stemmer.Stemmer("english")
# bm25s's English list, plus the words every question has: alone they match every FAQ heading.
STOPWORDS = sorted(
    set(STOPWORDS_EN)
    | set(
        "what whats how why when where which who whom whose can could do does did done i me my mine you your "
        "we our us he she him her his its am were been being have has had would should shall may might must "
        "about so than too very just also any some all there here from up out over again please tell know "
        "want need get".split()
    )
)


@dataclass(frozen=True)
class Passage:
    title: str
    text: str


def split_passages(knowledge: str) -> list[Passage]:
    """Markdown sections become passages; long sections and heading-less text split by paragraph."""
    passages: list[Passage] = []
    title = ""
    lines: list[str] = []

    def flush() -> None:
        body = "\n".join(lines).strip()
        if not body:
            return
        if len(body) <= MAX_SECTION:
            passages.append(Passage(title, body))
            return
        for paragraph in re.split(r"\n\s*\n", body):
            if paragraph.strip():
                passages.append(Passage(title, paragraph.strip()))

    for line in knowledge.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            title, lines = match.group(1), []
        else:
            lines.append(line)
    flush()
    return passages


class KnowledgeIndex:
    def __init__(self, knowledge: str) -> None:
        self.passages = split_passages(knowledge)
        self._retriever: bm25s.BM25 | None = None
        if self.passages:
            corpus = [f"{p.title}\n{p.title}\n{p.text}" for p in self.passages]
            tokens = bm25s.tokenize(corpus, stopwords=STOPWORDS, stemmer=_stemmer, show_progress=False)
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    def search(self, question: str, k: int = 2) -> list[tuple[Passage, float]]:
        if self._retriever is None:
            return []
        query = bm25s.tokenize([question], stopwords=STOPWORDS, stemmer=_stemmer, show_progress=False)
        if not query.ids or not query.ids[0]:
            return []
        k = min(k, len(self.passages))
        results, scores = self._retriever.retrieve(query, k=k, show_progress=False)
        return [(self.passages[int(i)], float(s)) for i, s in zip(results[0], scores[0], strict=True) if s > 0]


def quoted(found: list[tuple[Passage, float]]) -> list[Passage]:
    """The passages an answer quotes: the best, and a second only when nearly as relevant."""
    if not found:
        return []
    best_score = found[0][1]
    return [found[0][0]] + [passage for passage, score in found[1:] if score >= 0.75 * best_score]


def compose(question: str, found: list[tuple[Passage, float]]) -> str:
    passages = quoted(found)
    if not passages:
        return NO_ANSWER
    parts = [_quote(passages[0])] + ["Also relevant:\n" + _quote(p) for p in passages[1:]]
    return "\n\n".join(parts)


def _quote(passage: Passage) -> str:
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


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
            self._building[key] = asyncio.ensure_future(asyncio.to_thread(KnowledgeIndex, request.knowledge))
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
        found = index.search(request.prompt)
        answer = compose(request.prompt, found)
        for piece in re.findall(r"\S+\s*|\s+", answer):
            yield piece
        titles = tuple(dict.fromkeys(p.title for p in quoted(found) if p.title))
        yield Sources(titles=titles, answered=bool(found))
        yield Usage(tokens_in=count_tokens(request.prompt), tokens_out=count_tokens(answer))
