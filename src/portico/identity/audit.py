"""Writing the audit log: every service that changes what guests get or who is in a team records
the change here, with the member who made it, in the same transaction. Never a key, a code or a
token. The log is read as the team's (teams/audit.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from portico.identity.roles import Member
from portico.models import AuditEvent
from portico.vocabulary import AuditAction


async def record(
    db: AsyncSession, *, member: Member, action: AuditAction, assistant_id: int | None = None, **detail: Any
) -> None:
    db.add(
        AuditEvent(
            team_id=member.team_id,
            actor_id=member.account_id,
            actor_email=member.email,
            assistant_id=assistant_id,
            action=action,
            detail=detail,
        )
    )
    await db.flush()
