"""The team's audit log as members read it: newest first, filtered, a page at a time. Entries are
written by identity/audit.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import InvalidRequest
from portico.models import Assistant, AuditEvent
from portico.teams.audit_details import describe
from portico.vocabulary import AUDIT_LABELS, AuditAction


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    assistant_id: int | None
    assistant: str | None
    detail: dict[str, Any]

    @property
    def label(self) -> str:
        return AUDIT_LABELS[AuditAction(self.action)]

    @property
    def summary(self) -> str:
        """The detail as a short line for the dashboard: "Version: 3", "Status: Live", "Link: Student Group A"."""
        return describe(AuditAction(self.action), self.detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "actor": self.actor,
            "action": self.action,
            "assistant_id": self.assistant_id,
            "assistant": self.assistant,
            "detail": self.detail,
        }


def _entry(event: AuditEvent, assistant: str | None) -> Entry:
    return Entry(
        id=event.id,
        at=event.at,
        actor_id=event.actor_id,
        actor=event.actor_email or "Operator (command line)",
        action=event.action,
        assistant_id=event.assistant_id,
        assistant=assistant,
        detail=event.detail,
    )


# What changes a draft: its making (a duplicate's draft is a copy), an edit, a version restored into it.
EDITS_SHOWN = 100
DRAFT_ACTIONS = (AuditAction.ASSISTANT_CREATED, AuditAction.DRAFT_EDITED, AuditAction.VERSION_RESTORED)


async def draft_edits_since_publish(db: AsyncSession, *, team_id: int, assistant_id: int) -> list[Entry]:
    """Who changed the assistant's draft since its last Publish, and which fields: newest first, the
    last `EDITS_SHOWN` of them."""
    last_publish = (
        select(func.max(AuditEvent.id))
        .where(AuditEvent.assistant_id == assistant_id, AuditEvent.action == AuditAction.PUBLISHED)
        .scalar_subquery()
    )
    query = (
        select(AuditEvent, Assistant.name)
        .join(Assistant, Assistant.id == AuditEvent.assistant_id)
        .where(
            AuditEvent.team_id == team_id,
            AuditEvent.assistant_id == assistant_id,
            AuditEvent.action.in_(DRAFT_ACTIONS),
            AuditEvent.id > func.coalesce(last_publish, 0),
        )
        .order_by(AuditEvent.id.desc())
        .limit(EDITS_SHOWN)
    )
    return [_entry(event, name) for event, name in (await db.execute(query)).all()]


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidRequest("This cursor is not valid: pass the next_cursor of the previous page as it was.")
    return int(cursor)


async def list_events(
    db: AsyncSession,
    *,
    team_id: int,
    action: AuditAction | None = None,
    actor_id: int | None = None,
    assistant_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Entry], str | None]:
    """Newest first, a page at a time: the cursor is the id of the last entry shown (keyset, so
    entries added meanwhile neither repeat nor shift the pages)."""
    query = (
        select(AuditEvent, Assistant.name)
        .outerjoin(Assistant, Assistant.id == AuditEvent.assistant_id)
        .where(AuditEvent.team_id == team_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit + 1)
    )
    before = parse_cursor(cursor)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if assistant_id is not None:
        query = query.where(AuditEvent.assistant_id == assistant_id)
    rows = (await db.execute(query)).all()
    entries = [_entry(event, name) for event, name in rows[:limit]]
    next_cursor = str(entries[-1].id) if len(rows) > limit else None
    return entries, next_cursor
