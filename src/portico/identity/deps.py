"""Who is asking: the member behind an API token (`CurrentMember`) or a signed-in browser
(`DashboardMember`), read fresh on every request."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from portico.db import SessionDep
from portico.deps import BearerToken
from portico.errors import InvalidToken, PorticoError
from portico.identity import members, signin, tokens
from portico.identity.roles import Member
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
    request.state.teams = await members.teams_of(db, account_id=member.account_id or 0)
    return member


DashboardMember = Annotated[Member, Depends(dashboard_member)]


class FailedSecrets(Protocol):
    """The app's limiter (access/ratelimit.py `Limiter`), as far as tokens need it: named by what
    it does, so that identity does not import the guest side."""

    def address(self, request: Request) -> str: ...

    def refuse_if_locked_out(self, address: str) -> None: ...

    async def count_failure(self, address: str) -> None: ...


async def current_member(request: Request, db: SessionDep, token: BearerToken) -> Member:
    # Wrong tokens count against the address's failed secrets, like wrong keys (access/ratelimit.py).
    # A right one is never refused for them: a token is 32 random bytes, which no rate of guessing
    # finds, and the owner may share an address with whoever guessed (a school's NAT, a proxy).
    limiter: FailedSecrets = request.app.state.limiter
    try:
        return await tokens.member_for_token(db, token)
    except InvalidToken:
        address = limiter.address(request)
        limiter.refuse_if_locked_out(address)
        await limiter.count_failure(address)
        raise


# The token's member: an account within one team, with its role as it is now.
CurrentMember = Annotated[Member, Depends(current_member)]
