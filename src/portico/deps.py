"""Typed dependencies shared by the routers: the current member, the team's assistant, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portico.access.ratelimit import Limiter
from portico.assistants import service as assistants
from portico.config import Settings
from portico.db import SessionDep
from portico.errors import AuthRequired, InvalidToken
from portico.kit.crypto import Vault
from portico.models import Assistant
from portico.owners import service as owners
from portico.schemas import Id
from portico.teams.roles import Member


# Trivial dependencies are `async def`: FastAPI runs a plain `def` one in its thread pool, a
# hand-off that costs more than the function (bench/chat.py).
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
VaultDep = Annotated[Vault, Depends(get_vault)]


_bearer = HTTPBearer(auto_error=False, description="An owner's API token (pto_...) or a session token (pts_...).")


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise AuthRequired()
    return credentials.credentials.strip()


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_member(request: Request, db: SessionDep, token: BearerToken) -> Member:
    # Wrong tokens count against the address's failed secrets, like wrong keys (access/ratelimit.py).
    limiter: Limiter = request.app.state.limiter
    address = limiter.address(request)
    limiter.refuse_if_locked_out(address)
    try:
        return await owners.member_for_token(db, token)
    except InvalidToken:
        await limiter.count_failure(address)
        raise


# The token's member: an account within one team, with its role as it is now.
CurrentMember = Annotated[Member, Depends(current_member)]


async def owned_assistant(db: SessionDep, member: CurrentMember, assistant_id: Id) -> Assistant:
    # Another team's assistant answers 404, as if it did not exist.
    return await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)


OwnedAssistant = Annotated[Assistant, Depends(owned_assistant)]
