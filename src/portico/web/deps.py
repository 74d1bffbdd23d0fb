"""Who is signed in to the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from portico.assistants import service as assistants
from portico.db import SessionDep
from portico.errors import PorticoError
from portico.models import Assistant, Owner
from portico.owners import signin
from portico.schemas import Id
from portico.web.forms import SESSION_COOKIE


class SignInRequired(PorticoError):
    status = 303
    code = "sign_in_required"
    message = "Sign in to continue."


async def dashboard_owner(request: Request, db: SessionDep) -> Owner:
    token = request.cookies.get(SESSION_COOKIE)
    owner = await signin.owner_for_session(db, token) if token else None
    if owner is None:
        raise SignInRequired()
    request.state.owner = owner
    return owner


DashboardOwner = Annotated[Owner, Depends(dashboard_owner)]


async def dashboard_assistant(db: SessionDep, owner: DashboardOwner, assistant_id: Id) -> Assistant:
    return await assistants.get_owned(db, owner_id=owner.id, assistant_id=assistant_id)


DashboardAssistant = Annotated[Assistant, Depends(dashboard_assistant)]
