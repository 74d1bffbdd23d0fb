"""What the assistant could not answer: guests' questions grouped by wording (issue 14).

A question belongs in the report when its reply was the built-in engine's no-answer
(`answered` false), an engine error, or rated down by the guest. Questions are grouped by the
same set of content words: lowercased, punctuation dropped, stop words (English, and the words
every question has: "what", "how", "please") left out, the rest stemmed (Snowball, English), so
"What is your phone number?", "phone numbers" and "Your phone number, please!" are one group.
A question of stop words alone ("What?") groups by its normalised text.

It is read by those who may read Logs (any member of the team), and so it points to the
sessions' transcripts in Logs (the newest `SESSIONS` of each group) and carries the guests' own
thumbs-down comments; no link, name or address of a guest. A group last asked before the
assistant's last Publish is marked: the owner may have answered it since. The newest `SCAN`
matching replies of the period are grouped (a report of more would not be read); groups are
ordered by their last question, newest first, and paged by that time and the group's key.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime

import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from portico.errors import InvalidRequest
from portico.metrics.rollup import ENGINE_ERRORS
from portico.models import AssistantVersion, ChatSession, Message
from portico.vocabulary import Channel, Rating, Role

SCAN = 5_000
SAMPLES = 3
SESSIONS = 5
COMMENTS = 5
STOP_WORDS = frozenset(STOPWORDS_EN) | frozenset(
    "what whats how why when where which who whom whose can could do does did i me my you your we our us "
    "is are was were am be been have has had would should shall may might must about please tell know "
    "want need get there here any some".split()
)
_WORD = re.compile(r"\w+")
_stemmer = Stemmer.Stemmer("english")


def group_key(question: str) -> str:
    """The words that make two questions the same: their stemmed content words, as a sorted set."""
    words = _WORD.findall(question.lower())
    content = [word for word in words if word not in STOP_WORDS]
    if not content:
        return " ".join(words)
    return " ".join(sorted(set(_stemmer.stemWords(content))))


@dataclass
class Group:
    key: str
    count: int
    last_at: datetime
    # Why its replies failed: how many were no-answers, engine errors, rated down.
    not_answered: int = 0
    errors: int = 0
    rated_down: int = 0
    samples: list[str] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    before_last_publish: bool = False

    @property
    def question(self) -> str:
        """The newest wording: what the owner is offered to answer."""
        return self.samples[0]

    def as_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "count": self.count,
            "last_at": self.last_at.isoformat(),
            "samples": self.samples,
            "not_answered": self.not_answered,
            "engine_errors": self.errors,
            "rated_down": self.rated_down,
            "session_ids": self.sessions,
            "comments": self.comments,
            "before_last_publish": self.before_last_publish,
        }


def _cursor(group: Group) -> str:
    raw = f"{group.last_at.isoformat()}|{group.key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, key = raw.partition("|")
        return datetime.fromisoformat(moment), key
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("This page cursor is not valid; start again from the first page.") from None


async def last_publish(db: AsyncSession, *, assistant_id: int) -> datetime | None:
    query = select(func.max(AssistantVersion.published_at)).where(AssistantVersion.assistant_id == assistant_id)
    return await db.scalar(query)


async def report(
    db: AsyncSession,
    *,
    assistant_id: int,
    start: datetime,
    end: datetime,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Group], str | None]:
    """The period's unanswered questions in groups, newest first; and the next page's cursor."""
    reply = aliased(Message, name="reply")
    asked = aliased(Message, name="asked")
    question = (
        select(asked.content)
        .where(asked.session_id == reply.session_id, asked.id < reply.id, asked.role == Role.GUEST)
        .order_by(asked.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    failed = or_(reply.answered.is_(False), reply.error_code.in_(ENGINE_ERRORS), reply.rating == Rating.DOWN)
    query = (
        select(
            question.label("question"),
            reply.session_id,
            reply.created_at,
            reply.answered,
            reply.error_code,
            reply.rating,
            reply.rating_comment,
        )
        .join(ChatSession, ChatSession.id == reply.session_id)
        .where(
            and_(ChatSession.assistant_id == assistant_id, ChatSession.channel != Channel.PREVIEW),
            reply.role == Role.ASSISTANT,
            reply.created_at >= start,
            reply.created_at < end,
            failed,
        )
        .order_by(reply.created_at.desc(), reply.id.desc())
        .limit(SCAN)
    )
    groups: dict[str, Group] = {}
    for row in await db.execute(query):
        if not row.question:  # not stored ("don't store transcripts") or purged
            continue
        key = group_key(row.question)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key=key, count=0, last_at=row.created_at)
        group.count += 1
        group.not_answered += row.answered is False
        group.errors += row.error_code in ENGINE_ERRORS
        group.rated_down += row.rating == Rating.DOWN
        wording = " ".join(row.question.split())
        if len(group.samples) < SAMPLES and wording not in group.samples:
            group.samples.append(wording)
        if len(group.sessions) < SESSIONS and row.session_id not in group.sessions:
            group.sessions.append(row.session_id)
        comment = row.rating_comment if row.rating == Rating.DOWN else None
        if comment and len(group.comments) < COMMENTS and comment not in group.comments:
            group.comments.append(comment)
    published = await last_publish(db, assistant_id=assistant_id)
    for group in groups.values():
        group.before_last_publish = published is not None and group.last_at < published
    ordered = sorted(groups.values(), key=lambda g: (g.last_at, g.key), reverse=True)
    if cursor:
        moment, key = _after(cursor)
        ordered = [g for g in ordered if (g.last_at, g.key) < (moment, key)]
    page = ordered[:limit]
    return page, _cursor(page[-1]) if len(ordered) > limit else None
