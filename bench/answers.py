"""How well the built-in engine answers questions asked in other words, and how fast.

Four knowledge texts of different kinds (bench/data/answers/: a shop FAQ, a course syllabus, an
HR policy, a bike rental's FAQ) and a paraphrase set (questions.json, `--set dev`); seen.json was
held out until the engine was tuned against it (`--set seen`). The held-out set (heldout/: four
other texts, a dental practice, a guesthouse, a bouldering hall and a German yoga studio, with their
questions) is run only to report figures (`--set heldout`), never to tune; so is the second
held-out set (heldout2/: a recycling centre, a coworking space, a vet clinic and a French
language school, `--set heldout2`), written before the engine's third round of changes. Each question names the section that answers it and a phrase
the answer must contain, or no section when the knowledge has no answer (questions a guest would
ask that the knowledge does not cover, many sharing words with it: "paypal" where it lists
cards). Every question goes through the engine's own `stream` (as a reply does), in this
process, with the index built beforehand.

Figures, per text and overall:
  top-1 section   the first title in the reply's `Sources` is the labelled section
  key phrase      the reply contains the labelled phrase (case and spacing ignored)
  right           answered, first title the labelled section and the key phrase in the reply
                  (of the answerable questions)
  wrong           answered, but not right, or answered when the knowledge has no answer
                  (of all questions): a confident wrong answer, worse than the no-answer
  no-answer P/R   precision and recall of the engine's no-answer (`Sources.answered` False)
  answer chars    the mean length of the replies to answerable questions
  CPU ms/answer   p50 and p99 of the process CPU time of one whole reply, over --repeat rounds;
                  also on the four texts joined into one knowledge (about 60 sections)
  index build ms  CPU time to build the index of each text (best of --repeat builds)

    .venv/bin/python bench/answers.py
    .venv/bin/python bench/answers.py --set seen
    .venv/bin/python bench/answers.py --set heldout
    .venv/bin/python bench/answers.py --set heldout2
    .venv/bin/python bench/answers.py --set heldout --show   # each question's top passages and scores
    .venv/bin/python bench/answers.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit import fmt, machine_line, percentile, source_line
from portico.engines.base import EngineRequest, Sources
from portico.engines.builtin import BuiltinEngine, KnowledgeIndex

DATA = Path(__file__).resolve().parent / "data" / "answers"
# Each set: its questions, and the folder of the knowledge texts they name.
SETS = {
    "dev": (DATA / "questions.json", DATA),
    "seen": (DATA / "seen.json", DATA),
    "heldout": (DATA / "heldout" / "questions.json", DATA / "heldout"),
    "heldout2": (DATA / "heldout2" / "questions.json", DATA / "heldout2"),
}


@dataclass
class Score:
    questions: int = 0
    answerable: int = 0
    top1: int = 0
    key: int = 0
    right: int = 0
    wrong: int = 0
    said_no: int = 0
    said_no_rightly: int = 0
    unanswerable: int = 0
    answer_chars: list[int] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def add(self, question: dict[str, Any], text: str, sources: Sources) -> None:
        self.questions += 1
        if not sources.answered:
            self.said_no += 1
        if question["section"] is None:
            self.unanswerable += 1
            if not sources.answered:
                self.said_no_rightly += 1
            else:
                self.wrong += 1
                self.misses.append(f"{question['question']!r}: answered from {sources.titles}")
            return
        self.answerable += 1
        self.answer_chars.append(len(text))
        first = sources.titles[0] if sources.answered and sources.titles else None
        self.top1 += first == question["section"]
        found = _plain(question["key"]) in _plain(text)
        self.key += found
        right = first == question["section"] and found
        self.right += right
        self.wrong += sources.answered and not right
        if not right:
            self.misses.append(f"{question['question']!r}: wanted {question['section']!r}, got {first!r}")

    def row(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "top1": self.top1 / self.answerable if self.answerable else float("nan"),
            "key": self.key / self.answerable if self.answerable else float("nan"),
            "right": self.right / self.answerable if self.answerable else float("nan"),
            "wrong": self.wrong / self.questions if self.questions else float("nan"),
            "no_precision": self.said_no_rightly / self.said_no if self.said_no else float("nan"),
            "no_recall": self.said_no_rightly / self.unanswerable if self.unanswerable else float("nan"),
            "answer_chars": sum(self.answer_chars) / len(self.answer_chars) if self.answer_chars else float("nan"),
        }


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[*_`]", "", text).casefold().split())


async def ask(engine: BuiltinEngine, version: str, knowledge: str, question: str) -> tuple[str, Sources, float]:
    request = EngineRequest(
        version_key=version, instructions="", knowledge=knowledge, engine={"type": "builtin"}, prompt=question
    )
    started = time.process_time()
    pieces: list[str] = []
    sources = Sources(answered=True)
    async for item in engine.stream(request):
        if isinstance(item, str):
            pieces.append(item)
        elif isinstance(item, Sources):
            sources = item
    return "".join(pieces), sources, (time.process_time() - started) * 1000


def build_ms(knowledge: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        KnowledgeIndex(knowledge)
        best = min(best, (time.process_time() - started) * 1000)
    return best


async def run(args: argparse.Namespace) -> dict[str, Any]:
    questions_file, folder = SETS[args.set]
    questions = json.loads(questions_file.read_text(encoding="utf-8"))["questions"]
    names = tuple(dict.fromkeys(q["knowledge"] for q in questions))
    knowledge = {name: (folder / f"{name}.md").read_text(encoding="utf-8") for name in names}
    joined = "\n\n".join(knowledge.values())
    engine = BuiltinEngine()
    for name, text in [*knowledge.items(), ("joined", joined)]:
        await engine.index_for(EngineRequest(name, "", text, {"type": "builtin"}, ""))

    scores = {name: Score() for name in names}
    total = Score()
    for question in questions:
        name = question["knowledge"]
        text, sources, _ = await ask(engine, name, knowledge[name], question["question"])
        scores[name].add(question, text, sources)
        total.add(question, text, sources)
        if args.show:
            show(await engine.index_for(EngineRequest(name, "", knowledge[name], {"type": "builtin"}, "")), question)

    cpu: dict[str, list[float]] = {"each text": [], "joined": []}
    for _ in range(args.repeat):
        for question in questions:
            name = question["knowledge"]
            cpu["each text"].append((await ask(engine, name, knowledge[name], question["question"]))[2])
            cpu["joined"].append((await ask(engine, "joined", joined, question["question"]))[2])

    return {
        "set": args.set,
        "source": source_line(),
        "machine": machine_line(),
        "scores": {name: score.row() for name, score in scores.items()} | {"all": total.row()},
        "misses": total.misses,
        "cpu_ms": {name: {"p50": percentile(v, 50), "p99": percentile(v, 99)} for name, v in cpu.items()},
        "sections": {
            name: len(KnowledgeIndex(text).passages) for name, text in [*knowledge.items(), ("joined", joined)]
        },
        "build_ms": {name: build_ms(text, args.repeat) for name, text in [*knowledge.items(), ("joined", joined)]},
    }


def show(index: KnowledgeIndex, question: dict[str, Any]) -> None:
    """A question's top passages with their scores and coverage, and what the engine answered from."""
    answered = [hit.passage.title for hit in index.answers(question["question"])]
    print(f"{question['question']!r} wants {question['section']!r}, answered from {answered}")
    for hit in index.search(question["question"], 3):
        print(f"    {hit.score:7.2f} cov {hit.coverage:.2f} {hit.passage.title!r} covers {sorted(hit.covered)}")


def report(result: dict[str, Any]) -> None:
    print(f"answers benchmark, set {result['set']}; source {result['source']}; {result['machine']}")
    print()
    print(
        "| knowledge | questions | right | wrong | top-1 section | key phrase | no-answer precision | no-answer recall "
        "| answer chars |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in result["scores"].items():
        print(
            f"| {name} | {row['questions']} | {fmt(100 * row['right'])}% | {fmt(100 * row['wrong'])}% "
            f"| {fmt(100 * row['top1'])}% | {fmt(100 * row['key'])}% "
            f"| {fmt(100 * row['no_precision'])}% | {fmt(100 * row['no_recall'])}% | {fmt(row['answer_chars'], 0)} |"
        )
    print()
    print("| knowledge | passages | index build ms | CPU ms/answer p50 | p99 |")
    print("|---|---:|---:|---:|---:|")
    for name in ("each text", "joined"):
        texts = [n for n in result["sections"] if n != "joined"] if name == "each text" else ["joined"]
        builds = [result["build_ms"][n] for n in texts]
        passages = [result["sections"][n] for n in texts]
        print(
            f"| {name} | {'/'.join(map(str, passages))} | {'/'.join(fmt(b, 2) for b in builds)} "
            f"| {fmt(result['cpu_ms'][name]['p50'], 2)} | {fmt(result['cpu_ms'][name]['p99'], 2)} |"
        )
    if result["misses"]:
        print()
        print("Missed:")
        for miss in result["misses"]:
            print(f"  {miss}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=tuple(SETS), default="dev", help="which questions (default dev)")
    parser.add_argument("--show", action="store_true", help="print each question's top passages and scores")
    parser.add_argument("--repeat", type=int, default=20, help="timing rounds over the questions (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
