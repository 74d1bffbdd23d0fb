"""What a Publish would change for guests: the draft against the published version, field by field,
and who edited the draft since the last Publish (from the audit log).

Texts (instructions, greeting, knowledge) and the starter questions are line diffs with three lines
of context, long unchanged stretches collapsed to a count and at most `MAX_LINES` lines a field, so a
knowledge of thousands of lines reads as its changes. An engine's secret is never shown, nor its
ciphertext: only that it was added, changed or removed."""

from __future__ import annotations

import asyncio
import bisect
import difflib
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.assistants.service import default_draft, starters_of, voice_of
from portico.documents import store as documents
from portico.engines import PROVIDERS, Kind, secrets
from portico.models import Assistant, AssistantVersion
from portico.teams import audit
from portico.teams.audit import Entry

CONTEXT = 3
MAX_LINES = 200
# A stretch with no line found once on each side goes to difflib up to this many line pairs.
SMALL = 250_000
# A line longer than this (a knowledge pasted as one paragraph) is shown cut, ending in "…".
LINE_MAX = 1_000
LineKind = Literal["same", "added", "removed", "skipped", "hidden"]
TEXTS = {"instructions": "Instructions", "greeting": "Greeting", "knowledge": "Knowledge"}
SETTINGS = {
    "inactivity_timeout": "Inactivity timeout (seconds)",
    "max_duration": "Maximum duration (seconds)",
    "max_message_length": "Maximum message length (characters)",
    "language": "Guest pages' language",
}
VOICE = {
    "input": "Voice input",
    "turn_end": "Turn ends by",
    "silence_ms": "Silence that ends a turn (ms)",
    "press_seconds": "Press-to-send timer (seconds)",
    "spoken_replies": "Spoken replies",
    "voice_name": "Voice",
}
WORDS = {"url": "URL", "api": "API", "max": "maximum"}


@dataclass(frozen=True)
class Line:
    """One line of a diff; `skipped` stands for `count` unchanged lines, `hidden` (last) for `count`
    lines past `MAX_LINES`."""

    kind: LineKind
    text: str = ""
    count: int = 1


@dataclass(frozen=True)
class Change:
    """One field that differs: a line diff (`lines`), a value before and after, or a `note`."""

    field: str
    label: str
    lines: list[Line] = default(default_factory=list)
    before: str | None = None
    after: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class DraftDiff:
    published_version: int | None
    has_changes: bool
    changes: list[Change]
    edits: list[Entry]


def _anchors(a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int) -> list[tuple[int, int]]:
    """Lines found once in each side, kept in the order both sides agree on (the longest increasing
    run, found by patience sorting): the fixed points of a patience diff."""
    once_a: dict[str, int | None] = {}
    for i in range(a0, a1):
        once_a[a[i]] = None if a[i] in once_a else i
    once_b: dict[str, int | None] = {}
    for j in range(b0, b1):
        once_b[b[j]] = None if b[j] in once_b else j
    pairs = sorted(
        (in_a, in_b) for text, in_a in once_a.items() if in_a is not None and (in_b := once_b.get(text)) is not None
    )
    tops: list[int] = []  # the smallest last `j` of a run of each length
    ends: list[int] = []  # the index in `pairs` of that run's last pair
    back: list[int] = []
    for k, (_i, last) in enumerate(pairs):
        at = bisect.bisect_left(tops, last)
        if at == len(tops):
            tops.append(last)
            ends.append(k)
        else:
            tops[at], ends[at] = last, k
        back.append(ends[at - 1] if at else -1)
    run = []
    k = ends[-1] if ends else -1
    while k >= 0:
        run.append(pairs[k])
        k = back[k]
    return run[::-1]


def _matches(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """The lines `a` and `b` share, as (index in a, index in b), in order. A patience diff: unique
    lines anchor it and difflib fills the small stretches between anchors; difflib alone took two
    minutes on a knowledge with every other line deleted."""
    found: list[tuple[int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        a0, a1, b0, b1 = stack.pop()
        while a0 < a1 and b0 < b1 and a[a0] == b[b0]:
            found.append((a0, b0))
            a0, b0 = a0 + 1, b0 + 1
        while a0 < a1 and b0 < b1 and a[a1 - 1] == b[b1 - 1]:
            a1, b1 = a1 - 1, b1 - 1
            found.append((a1, b1))
        if a0 == a1 or b0 == b1:
            continue
        anchors = _anchors(a, b, a0, a1, b0, b1)
        if anchors:
            found += anchors
            edges = [(a0 - 1, b0 - 1), *anchors, (a1, b1)]
            stack += [(i + 1, ni, j + 1, nj) for (i, j), (ni, nj) in zip(edges, edges[1:], strict=False)]
        elif (a1 - a0) * (b1 - b0) <= SMALL:
            matcher = difflib.SequenceMatcher(None, a[a0:a1], b[b0:b1], autojunk=False)
            found += [(a0 + i + k, b0 + j + k) for i, j, size in matcher.get_matching_blocks() for k in range(size)]
        # else: a large stretch of repeated lines only, shown as removed and added.
    return sorted(found)


def line_diff(before: list[str], after: list[str]) -> list[Line]:
    """`after` against `before`: changed lines with their context, unchanged stretches as counts."""
    ops: list[Line] = []
    i = j = 0
    for mi, mj in [*_matches(before, after), (len(before), len(after))]:
        ops += [Line("removed", text) for text in before[i:mi]]
        ops += [Line("added", text) for text in after[j:mj]]
        if mi < len(before):
            ops.append(Line("same", before[mi]))
        i, j = mi + 1, mj + 1
    changed = [k for k, op in enumerate(ops) if op.kind != "same"]
    if not changed:
        return []
    # Each unchanged line within CONTEXT of a change is shown; the others are counted.
    near = [False] * len(ops)
    for k in changed:
        for n in range(max(0, k - CONTEXT), min(len(ops), k + CONTEXT + 1)):
            near[n] = True
    lines: list[Line] = []
    for op, shown in zip(ops, near, strict=True):
        if shown:
            lines.append(op)
        elif lines and lines[-1].kind == "skipped":
            lines[-1] = Line("skipped", count=lines[-1].count + 1)
        else:
            lines.append(Line("skipped", count=1))
    if len(lines) > MAX_LINES:
        hidden = sum(line.count if line.kind == "skipped" else 1 for line in lines[MAX_LINES:])
        lines = [*lines[:MAX_LINES], Line("hidden", count=hidden)]
    return [
        Line(line.kind, line.text[:LINE_MAX] + "…", line.count) if len(line.text) > LINE_MAX else line for line in lines
    ]


def _label(name: str) -> str:
    words = [WORDS.get(word, word) for word in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _engine_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    old_provider = PROVIDERS.find(Kind.REPLY, before.get("type", ""))
    new_provider = PROVIDERS.find(Kind.REPLY, after.get("type", ""))
    providers = [p for p in (old_provider, new_provider) if p is not None]
    hidden = {secret for provider in providers for secret in provider.secrets}
    changes = []
    for name in secrets.changed_fields(providers, before, after):
        label = f"Engine: {_label(name)}"
        if name in hidden:
            had, has = secrets.stored_name(name) in before, secrets.stored_name(name) in after
            verb = "changed" if had and has else "added" if has else "removed"
            changes.append(Change(f"engine.{name}", label, note=f"{_label(name)} {verb}"))
        elif name == "type":
            names = [p.label if p else str(e.get("type")) for p, e in ((old_provider, before), (new_provider, after))]
            changes.append(Change("engine.type", "Engine", before=names[0], after=names[1]))
        else:
            changes.append(
                Change(f"engine.{name}", label, before=_shown(before.get(name)), after=_shown(after.get(name)))
            )
    return changes


def compare(published: dict[str, Any], draft: dict[str, Any]) -> list[Change]:
    """The draft's changes against a published configuration, in the order the Behavior page shows them."""
    changes = []
    for name, label in TEXTS.items():
        old, new = str(published.get(name) or ""), str(draft.get(name) or "")
        if old != new:
            changes.append(Change(name, label, lines=line_diff(old.splitlines(), new.splitlines())))
        if name == "greeting":
            shown = [published.get("greeting_enabled", True), draft.get("greeting_enabled", True)]
            if shown[0] != shown[1]:
                changes.append(
                    Change("greeting_enabled", "Greeting sent", before=_shown(shown[0]), after=_shown(shown[1]))
                )
    old_starters, new_starters = starters_of(published), starters_of(draft)
    if old_starters != new_starters:
        changes.append(Change("starters", "Starter questions", lines=line_diff(old_starters, new_starters)))
    changes += _engine_changes(published.get("engine", {}), draft.get("engine", {}))
    old_settings, new_settings = published.get("settings", {}), draft.get("settings", {})
    for name in sorted(
        set(old_settings) | set(new_settings), key=lambda n: list(SETTINGS).index(n) if n in SETTINGS else 99
    ):
        if old_settings.get(name) != new_settings.get(name):
            before, after = old_settings.get(name), new_settings.get(name)
            if name == "language":
                before, after = before or "the guest's browser decides", after or "the guest's browser decides"
            changes.append(
                Change(f"settings.{name}", SETTINGS.get(name, _label(name)), before=_shown(before), after=_shown(after))
            )
    old_voice, new_voice = voice_of(published), voice_of(draft)
    for name, label in VOICE.items():
        if old_voice[name] != new_voice[name]:
            changes.append(
                Change(f"voice.{name}", label, before=_shown(old_voice[name]), after=_shown(new_voice[name]))
            )
    old_stt, new_stt = old_voice["speech_to_text"], new_voice["speech_to_text"]
    if old_stt != new_stt:
        kinds = [PROVIDERS.find(Kind.SPEECH_TO_TEXT, config.get("type", "")) for config in (old_stt, new_stt)]
        fields = secrets.changed_fields([p for p in kinds if p is not None], old_stt, new_stt)
        # Which fields changed, by name only: never a key, nor its ciphertext.
        changes.append(Change("voice.speech_to_text", "Speech to text", note="Changed: " + ", ".join(fields)))
    # A version keeps its documents' text, the draft their fingerprints: compare the fingerprints.
    published = {**published, "documents": documents.fingerprints(published.get("documents", []))}
    draft = {**draft, "documents": documents.fingerprints(draft.get("documents", []))}
    known = {*TEXTS, "greeting_enabled", "starters", "engine", "settings", "voice"}
    for name in sorted((set(published) | set(draft)) - known):
        if published.get(name) != draft.get(name):
            changes.append(Change(name, _label(name), note="changed"))
    return changes


async def draft_diff(db: AsyncSession, *, assistant: Assistant) -> DraftDiff:
    version = None
    if assistant.published_version is not None:
        version = await db.scalar(
            select(AssistantVersion)
            .options(undefer(AssistantVersion.config))
            .where(
                AssistantVersion.assistant_id == assistant.id,
                AssistantVersion.number == assistant.published_version,
            )
        )
    published = version.config if version is not None else default_draft()
    # Pure Python over up to a million characters: not on the event loop.
    changes = await asyncio.to_thread(compare, published, assistant.draft)
    edits = await audit.draft_edits_since_publish(db, team_id=assistant.team_id, assistant_id=assistant.id)
    return DraftDiff(
        published_version=assistant.published_version,
        has_changes=version is None or version.digest != assistant.draft_digest,
        changes=changes,
        edits=edits,
    )
