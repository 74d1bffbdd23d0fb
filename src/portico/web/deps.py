"""Who is signed in to the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from portico.assistants import service as assistants
from portico.db import SessionDep
from portico.errors import PorticoError
from portico.models import Assistant
from portico.owners import signin
from portico.schemas import Id
from portico.teams import service as teams
from portico.teams.roles import Member
from portico.web.forms import SESSION_COOKIE


class SignInRequired(PorticoError):
    status = 303
    code = "sign_in_required"
    message = "Sign in to continue."


async def dashboard_member(request: Request, db: SessionDep) -> Member:
    token = request.cookies.get(SESSION_COOKIE)
    member = await signin.member_for_session(db, token) if token else None
    if member is None:
        raise SignInRequired()
    # Pages show the current team, the switcher and what the role may do (web/forms.py render).
    request.state.member = member
    request.state.teams = await teams.teams_of(db, account_id=member.account_id or 0)
    return member


DashboardMember = Annotated[Member, Depends(dashboard_member)]


async def dashboard_assistant(db: SessionDep, member: DashboardMember, assistant_id: Id) -> Assistant:
    return await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)


DashboardAssistant = Annotated[Assistant, Depends(dashboard_assistant)]
