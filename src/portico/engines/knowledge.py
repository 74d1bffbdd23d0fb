"""The knowledge text as the built-in engine reads it: passages, their sentences, and an index.

A passage is a Markdown section (or a paragraph of a long one). A question finds passages by BM25
(bm25s) over its own words and, at a lower weight, the words the lexicon relates to them; the
passage found answers only when it covers enough of what the question asks about (weighted by how
rare each word is), so a question about something the knowledge never mentions gets the no-answer.
Within the passage the sentences (or list items) that share the most with the question, or look
like what it asks for (a price, a time, a phone number), are the answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH, STOPWORDS_GERMAN, STOPWORDS_SPANISH

from portico.engines.lexicon import (
    PHRASES,
    PHRASING,
    QUESTION_TYPES,
    SYNONYMS,
    QuestionType,
    question_types,
    rewrite_phrases,
)

MAX_SECTION = 900
# The weight of a word the question did not use but the lexicon relates to one it did.
RELATED = 0.5
# How much of the question (by the rarity of its words) the passage must cover to answer it.
COVERAGE = 0.5
# The weight of a question word the knowledge never uses, against the rarity of a word in no passage.
UNKNOWN = 1.0
# The question's focus: the rarest of its words that the knowledge uses, and those nearly as rare
# (this share of its rarity). The passage that answers must have one of them: covering the
# question's common words ("question", "teach") by coincidence is not an answer.
FOCUS = 0.7

# A passage of at most this many sentences or list items is quoted whole: a short answer is one
# thought, and cutting it loses its second half (the price to Austria after the one to Germany).
WHOLE = 4
# The sentences or list items an answer quotes from one passage, at most.
MAX_UNITS = 3
# A sentence scoring this share of the best one's is quoted with it.
NEARLY = 0.6
# A second passage is quoted when it scores this share of the best and covers words the best does not.
SECOND = 0.5
# How much a passage's rank depends on its coverage of the question: score x (COVERED + coverage).
COVERED = 0.5
# What is left of a passage's coverage when no sentence of it looks like what the question asks.
UNSHAPED = 0.5
# What a sentence gains for having the shape of the answer (a price for "how much"); a passage
# with such a sentence gains half its score again.
SHAPE = 1.5
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
# A sentence ends at . ! or ? followed by a space and a capital, digit or quote; not after a title
# or a common abbreviation ("Dr. Okafor", "e.g. this").
_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bNo\.)(?<!\bProf\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])"
)
_YES_NO = re.compile(r"^(?:yes|no)\b", re.I)
_REFERS_BACK = re.compile(r"^(?:it|they|this|these|that|those|there|then|its|their)\b", re.I)
_stemmer = Stemmer.Stemmer("english")
# bm25s's English list, plus the words every question has: alone they match every FAQ heading.
STOPWORDS = frozenset(
    set(STOPWORDS_EN)
    | set(
        "what whats how why when where which who whom whose can could do does did done i me my mine you your "
        "we our us he she him her his its am were been being have has had would should shall may might must "
        "about so than too very just also any some all there here from up out over again please tell know "
        "want need get i'm im ok okay hi hello don't dont can't cant won't isn't every happen happens happened "
        "something anything thing things still now right today possible able allowed own good certain give "
        "much many long far often soon feel feeling before after until".split()
    )
)


def _folded(text: str) -> str:
    """Lower case without accents: "Café" and "cafe" are one word, as guests type them."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


# The English stems of stopwords ("gets" is "get" once stemmed).
_STOPPED_STEMS = frozenset(_stemmer.stemWords(list(STOPWORDS)))
# German, French and Spanish function words, so that a question asked in those languages is not
# mostly unknown words; stems are English, so only the words as written are dropped. Words that
# are also English content words ("hat", "son") stay.
_FOREIGN_STOPWORDS = frozenset(
    _folded(word)
    for word in [
        *STOPWORDS_GERMAN,
        *STOPWORDS_FRENCH,
        *STOPWORDS_SPANISH,
        *"wann warum wieso weshalb habt gibt bitte quand comment pourquoi quel quelle cuando donde como".split(),
    ]
    if word not in {"die", "hat", "war", "son", "pour", "man", "bin", "mist", "sale", "ai"}
)


def words(text: str) -> list[str]:
    """The stemmed words of a text that carry meaning, in order. A hyphenated word is one word
    without its hyphens: guests write "ebike" and "e-mail" for "e-bike" and "email"."""
    found = [
        w.replace("-", "") for w in _WORD.findall(_folded(text)) if w not in STOPWORDS and w not in _FOREIGN_STOPWORDS
    ]
    return [w for w in _stemmer.stemWords(found) if w not in _STOPPED_STEMS]


def _related() -> dict[str, frozenset[str]]:
    related: dict[str, set[str]] = {}
    for line in SYNONYMS.strip().splitlines():
        group = set(_stemmer.stemWords(line.split()))
        for word in group:
            related.setdefault(word, set()).update(group - {word})
    for word in set(PHRASES.values()):
        related.setdefault(_stemmer.stemWord(word), set())
    return {word: frozenset(others) for word, others in related.items()}


RELATED_WORDS = _related()
PHRASING_WORDS = frozenset(_stemmer.stemWords(PHRASING.split()))


@dataclass(frozen=True)
class Passage:
    title: str
    text: str
    # What sources name for a passage of a document: "Price list 2027, page 2" (else the title).
    cite: str = ""

    @property
    def source(self) -> str:
        return self.cite or self.title


@dataclass(frozen=True)
class Unit:
    """A sentence, an item of a list (then `marker` is its "-" or "3."), or a whole table (then
    `marker` is "|"). The units of one list, with the sentence introducing it, share a `block`."""

    text: str
    marker: str
    words: frozenset[str]
    block: int = 0

    @property
    def item(self) -> bool:
        return bool(self.marker) and self.marker != "|"

    @property
    def table(self) -> bool:
        return self.marker == "|"


@dataclass(frozen=True)
class Question:
    words: tuple[str, ...]
    # The words related to them, and the words an answer of its kind uses (`cues`).
    related: tuple[str, ...]
    cues: frozenset[str]
    kinds: tuple[QuestionType, ...]

    def shaped(self, text: str) -> bool:
        """Whether a text looks like what the question asks for (a price for "how much")."""
        return any(kind.answer.search(text) for kind in self.kinds)


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float
    # The question's words the passage has, itself or through a related word.
    covered: frozenset[str]
    units: tuple[Unit, ...]
    # Whether the passage has the question's rarest word (its focus), itself or through a related word.
    focused: bool = True


def split_passages(knowledge: str) -> list[Passage]:
    """Markdown sections become passages; long sections and heading-less text split by block."""
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
        for block in _blocks(body):
            passages.append(Passage(title, block))

    for line in knowledge.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            title, lines = match.group(1), []
        else:
            lines.append(line)
    flush()
    return passages


_PAGE_MARKER = re.compile(r"^<!-- (page|slide) (\d+) -->$")


def split_document(name: str, text: str) -> list[Passage]:
    """A document's passages (documents/convert.py made its Markdown): split along headings and
    pages, each cited by the document's name and its page ("Price list 2027, page 2"), or by its
    section in a document without pages ("Handbook: Opening hours")."""
    passages: list[Passage] = []
    page = ""
    chunk: list[str] = []

    def flush() -> None:
        for passage in split_passages("\n".join(chunk)):
            where = f", {page}" if page else (f": {passage.title}" if passage.title else "")
            passages.append(Passage(passage.title or name, passage.text, f"{name}{where}"))
        chunk.clear()

    for line in text.splitlines():
        marker = _PAGE_MARKER.match(line)
        if marker:
            flush()
            page = f"{marker.group(1)} {marker.group(2)}"
            # A heading carried over from the page before goes on: a section can span pages.
            heading = next((p.title for p in reversed(passages) if p.title != name), "")
            if heading and passages:
                chunk.append(f"# {heading}")
        else:
            chunk.append(line)
    flush()
    return passages


def _blocks(body: str) -> list[str]:
    """A long section's paragraphs, never cutting a table or a list: a list's items stay together
    (blank lines between them or not), and the line that introduces a list or a table ("Please
    bring:") travels with it."""
    blocks: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", body)):
        if not paragraph:
            continue
        first = paragraph.splitlines()[0]
        listed = bool(_LIST_ITEM.match(first) or _TABLE_ROW.match(first))
        if blocks and listed and (_ends_intro(blocks[-1]) or _is_list(blocks[-1].splitlines()[-1])):
            blocks[-1] += "\n\n" + paragraph
        else:
            blocks.append(paragraph)
    return blocks


def _is_list(line: str) -> bool:
    return bool(_LIST_ITEM.match(line) or _TABLE_ROW.match(line))


def _ends_intro(text: str) -> bool:
    return text.rstrip().endswith(":")


def split_units(text: str) -> list[Unit]:
    """A passage's sentences, list items and tables. A table is one unit; the items of a list,
    and the sentence that introduces a list or a table, share a `block`, and are quoted together."""
    units: list[Unit] = []
    paragraph: list[str] = []
    table: list[str] = []
    block = 0

    def flush() -> None:
        nonlocal block
        for sentence in _SENTENCE_END.split(" ".join(paragraph)):
            if sentence.strip():
                block += 1
                units.append(Unit(sentence.strip(), "", frozenset(words(sentence)), block))
        paragraph.clear()
        if table:
            rows = "\n".join(table)
            units.append(Unit(rows, "|", frozenset(words(rows)), _joined()))
            table.clear()

    def _joined() -> int:
        """The block of a list or table: the one of the sentence before it when that introduces it,
        or of the item before it when the list goes on."""
        nonlocal block
        last = units[-1] if units else None
        if last is not None and (last.item or _ends_intro(last.text)) and not (last.marker == "|"):
            return last.block
        block += 1
        return block

    for line in text.splitlines():
        marker = _LIST_ITEM.match(line)
        if _TABLE_ROW.match(line):
            if paragraph:
                flush()
            table.append(line.strip())
        elif marker:
            flush()
            item = line[marker.end() :].strip()
            units.append(Unit(item, marker.group().strip(), frozenset(words(item)), _joined()))
        elif line.strip():
            if table:
                flush()
            paragraph.append(line.strip())
        else:
            flush()
    flush()
    return units


def parse_question(text: str) -> Question:
    asked = tuple(dict.fromkeys(words(rewrite_phrases(text))))
    kinds = tuple(question_types(text))
    cues = frozenset(_stemmer.stemWords([w for kind in kinds for w in kind.words])) - set(asked)
    related = {r for word in asked for r in RELATED_WORDS.get(word, ())} | cues
    return Question(asked, tuple(sorted(related - set(asked))), cues, kinds)


class KnowledgeIndex:
    def __init__(self, knowledge: str, documents: tuple[tuple[str, str], ...] = ()) -> None:
        """`documents`: each document's name and Markdown, read by `split_document`."""
        self.passages = split_passages(knowledge) + [p for name, text in documents for p in split_document(name, text)]
        self._units = [tuple(split_units(p.text)) for p in self.passages]
        # Which question types each passage can answer (it has a price, a time, ...), found once.
        self._shapes = [
            frozenset(kind for kind in QUESTION_TYPES if any(kind.answer.search(u.text) for u in units))
            for units in self._units
        ]
        self._words = [
            frozenset(words(p.title)) | frozenset().union(*(u.words for u in units))
            for p, units in zip(self.passages, self._units, strict=True)
        ]
        counts = Counter(word for passage_words in self._words for word in passage_words)
        n = len(self.passages)
        self._idf = {word: math.log(1 + (n - df + 0.5) / (df + 0.5)) for word, df in counts.items()}
        # A word no passage has counts, for coverage, as a rare word at a discount: it is as often
        # the question's own phrasing ("feeling", "grandmother") as what the knowledge lacks ("gym").
        self._unknown_idf = UNKNOWN * math.log(1 + (n + 0.5) / 0.5)
        self._retriever: bm25s.BM25 | None = None
        if self.passages:
            corpus = [words(f"{p.title}\n{p.title}\n{p.text}") for p in self.passages]
            self._retriever = bm25s.BM25()
            self._retriever.index(corpus, show_progress=False)

    def idf(self, word: str) -> float:
        return self._idf.get(word, self._unknown_idf)

    def search(self, text: str, k: int = 2) -> list[Hit]:
        """The best passages for a question, best first, each with how much of the question it covers."""
        question = parse_question(text)
        if self._retriever is None or not question.words:
            return []
        scores = self._scores(list(question.words)) + RELATED * self._scores(list(question.related))
        covered = {i: self._covered(question, self._words[i]) for i in range(len(self.passages)) if scores[i] > 0}
        # A word the knowledge lacks counts against a passage, unless it only phrases the question
        # or holds a digit (an order number, a plate, a date: the guest's case, not a subject).
        weights = {
            w: self.idf(w)
            for w in question.words
            if w in self._idf or not (w in PHRASING_WORDS or any(c.isdigit() for c in w))
        }
        total = sum(weights.values())
        if not total:
            return []
        # A word that looks like the answer asked for ("weekdays" when asking when) is covered by a
        # passage with an answer of that shape ("Monday to Friday from 9:00").
        for kind in question.kinds:
            shaped = {w for w in question.words if kind.answer.search(w)}
            for i in covered:
                if shaped and kind in self._shapes[i]:
                    covered[i] = covered[i] | shaped
        coverage = {i: sum(weights.get(w, 0.0) for w in words) / total for i, words in covered.items()}
        for kind in question.kinds:
            for i in covered:
                if kind in self._shapes[i]:
                    scores[i] *= 1 + RELATED
                elif kind.strict:
                    # "How much does it cost?" is not answered by a passage without a price in it.
                    coverage[i] *= UNSHAPED
        # A passage that matches many words of the question ranks above one that matches one of them often.
        ranked = sorted(covered, key=lambda i: -scores[i] * (COVERED + coverage[i]))[:k]
        # Words the knowledge lacks are left out: coverage already counts them, and they are as
        # often the question's own phrasing ("professor" for "instructor") as what it asks about.
        known = {w: self._idf[w] for w in question.words if w in self._idf}
        focus = frozenset(w for w, rarity in known.items() if rarity >= FOCUS * max(known.values()))
        return [
            Hit(
                self.passages[i],
                float(scores[i]) * (COVERED + coverage[i]),
                coverage[i],
                covered[i],
                self._answering(question, i),
                not focus or bool(focus & covered[i]),
            )
            for i in ranked
        ]

    def answers(self, text: str) -> list[Hit]:
        """The passages that answer the question: the best when it covers enough of the question
        and has its focus, and the second only when nearly as good."""
        found = self.search(text, 2)
        if not found or found[0].coverage < COVERAGE or not found[0].focused:
            return []
        best = found[0]
        # The second must also say something the first does not ("public" and "private").
        return [best] + [h for h in found[1:] if h.score >= SECOND * best.score and h.covered - best.covered]

    def _scores(self, query: list[str]) -> npt.NDArray[np.float64]:
        assert self._retriever is not None
        if not query:
            return np.zeros(len(self.passages))
        return np.asarray(self._retriever.get_scores(query), dtype=np.float64)

    @staticmethod
    def _covered(question: Question, have: frozenset[str]) -> frozenset[str]:
        return frozenset(w for w in question.words if w in have or RELATED_WORDS.get(w, frozenset()) & have)

    def _match(self, question: Question, have: frozenset[str], skip: frozenset[str] = frozenset()) -> float:
        """How much of the question a sentence says: each question word (but those in `skip`) counts
        once, by its rarity, found itself or (for less) through a related word."""
        total = 0.0
        for word in question.words:
            if word in skip:
                continue
            if word in have:
                total += self.idf(word)
            elif related := RELATED_WORDS.get(word, frozenset()) & have:
                total += RELATED * max(self.idf(r) for r in related)
        if cues := question.cues & have:
            total += RELATED * max(self.idf(c) for c in cues)
        return total

    def _answering(self, question: Question, i: int) -> tuple[Unit, ...]:
        units = self._units[i]
        if len(units) <= WHOLE:
            # Cutting a passage this short saves the guest nothing and can lose what it says.
            return units
        scores = [self._match(question, u.words) + (SHAPE if question.shaped(u.text) else 0.0) for u in units]
        best = max(range(len(units)), key=scores.__getitem__)
        if scores[best] <= 0:
            return tuple(u for u in units if u.block in {units[0].block, units[1].block})
        chosen = {best}
        said = self._covered(question, units[best].words)
        # Then the sentences nearly as good, or that say a part of the question not yet said.
        for j in sorted(range(len(units)), key=lambda j: -scores[j]):
            if len(chosen) == MAX_UNITS:
                break
            gain = self._match(question, units[j].words, skip=said)
            if j not in chosen and (scores[j] >= NEARLY * scores[best] or gain >= 0.3 * scores[best]):
                chosen.add(j)
                said |= self._covered(question, units[j].words)
        # An FAQ's "Yes." or "No, ..." answers the question its heading asks.
        if _YES_NO.match(units[0].text) and len(units[0].text.split()) <= 6:
            chosen.add(0)
        # "They are valid for three years" needs the sentence that says what "they" are.
        for j in sorted(chosen):
            if j > 0 and not units[j].item and _REFERS_BACK.match(units[j].text):
                chosen.add(j - 1)
        # A list or a table is answered whole, with the sentence that introduces it.
        blocks = {units[j].block for j in chosen}
        return tuple(u for u in units if u.block in blocks)
