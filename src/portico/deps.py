"""Typed dependencies every router may use: settings, the vault and a bearer credential. Who is
asking is identity/deps.py; the assistant a route is about, assistants/deps.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portico.config import Settings
from portico.errors import AuthRequired
from portico.kit.crypto import Vault


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
