"""The assistant a route is about, looked up within the asking member's team: another team's
assistant answers 404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from portico.assistants import service as assistants
from portico.db import SessionDep
from portico.identity.deps import CurrentMember, DashboardMember
from portico.models import Assistant
from portico.schemas import Id


async def owned_assistant(db: SessionDep, member: CurrentMember, assistant_id: Id) -> Assistant:
    return await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)


OwnedAssistant = Annotated[Assistant, Depends(owned_assistant)]


async def dashboard_assistant(db: SessionDep, member: DashboardMember, assistant_id: Id) -> Assistant:
    return await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)


DashboardAssistant = Annotated[Assistant, Depends(dashboard_assistant)]
