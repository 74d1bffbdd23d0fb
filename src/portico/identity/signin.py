"""Dashboard sign-in: passwords, the lock-out after repeated failures, and cookie sessions."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import NotFound, PorticoError
from portico.identity import accounts, members
from portico.identity.roles import Member
from portico.kit.crypto import digest, new_token
from portico.models import Owner, OwnerSession, SignInFailure, utcnow

SESSION_PREFIX = "pds_"
# A wrong password counts against the pair (email, address) and against the address, never
# against the email alone: a stranger's guesses then lock the stranger out, not the owner, who
# signs in from their own address. An address gets more tries than a pair, so colleagues behind
# one office address do not lock each other out over a few typos.
MAX_FAILURES = 10
MAX_ADDRESS_FAILURES = 30
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


class SignInRefused(PorticoError):
    status = 401
    code = "sign_in_failed"
    message = "That email and password do not match an account."


class SignInLocked(PorticoError):
    status = 429
    code = "sign_in_locked"


def locked_until(failures: list[datetime], now: datetime, limit: int = MAX_FAILURES) -> datetime | None:
    """When `limit` failures fall within WINDOW, tries are locked for LOCK after the last of them."""
    failures = sorted(failures)
    for i in range(limit - 1, len(failures)):
        if failures[i] - failures[i - limit + 1] <= WINDOW and failures[i] + LOCK > now:
            return failures[i] + LOCK
    return None


async def sign_in(db: AsyncSession, *, email: str, password: str, address: str, days: int) -> tuple[Owner, str]:
    """`address` is the client's, as stored: a pseudonym (kit/net.py), never the address itself."""
    email = email.strip().lower()[:320]
    now = utcnow()
    recent = SignInFailure.at > now - WINDOW - LOCK
    checks = (
        (and_(SignInFailure.email == email, SignInFailure.ip == address), MAX_FAILURES),
        (SignInFailure.ip == address, MAX_ADDRESS_FAILURES),
    )
    for where, limit in checks:
        until = locked_until(list(await db.scalars(select(SignInFailure.at).where(where, recent))), now, limit)
        if until is not None:
            minutes = max(1, round((until - now).total_seconds() / 60))
            raise SignInLocked(
                f"Too many failed sign-ins. For your safety, try again in {minutes} minute{'s' if minutes > 1 else ''}."
            )
    owner = await accounts.authenticate_password(db, email=email, password=password)
    if owner is None:
        db.add(SignInFailure(email=email, ip=address, at=now))
        # Old failures are useless once outside every window; drop them as we go.
        await db.execute(delete(SignInFailure).where(SignInFailure.at < now - WINDOW - LOCK))
        await db.flush()
        raise SignInRefused()
    # Only this pair's slate is wiped: signing in to one's own account clears no one else's count.
    await db.execute(delete(SignInFailure).where(SignInFailure.email == email, SignInFailure.ip == address))
    return owner, await open_session(db, owner=owner, days=days)


async def open_session(db: AsyncSession, *, owner: Owner, days: int, team_id: int | None = None) -> str:
    token = new_token(SESSION_PREFIX)
    expires_at = utcnow() + timedelta(days=days)
    db.add(OwnerSession(owner_id=owner.id, team_id=team_id, digest=digest(token), expires_at=expires_at))
    await db.flush()
    return token


async def member_for_session(db: AsyncSession, token: str) -> Member | None:
    """The signed-in account in the team this browser chose (its first team until it chooses)."""
    row = (
        await db.execute(
            select(OwnerSession.owner_id, OwnerSession.team_id).where(
                OwnerSession.digest == digest(token), OwnerSession.expires_at > utcnow()
            )
        )
    ).first()
    if row is None:
        return None
    account_id, team_id = row
    if team_id is not None:
        try:
            return await members.member_in(db, account_id=account_id, team_id=team_id)
        except NotFound:
            pass  # removed from that team since: back to the first team
    return await members.first_team(db, account_id=account_id)


async def switch_team(db: AsyncSession, *, token: str, account_id: int, team_id: int) -> Member:
    """Work in another team from now on in this browser; a team one is not in answers 404."""
    member = await members.member_in(db, account_id=account_id, team_id=team_id)
    await db.execute(update(OwnerSession).where(OwnerSession.digest == digest(token)).values(team_id=team_id))
    return member


async def forget_team(db: AsyncSession, *, team_id: int, account_id: int | None = None) -> None:
    """Browsers that worked in this team (one member's, or everyone's) fall back to their first team."""
    where = OwnerSession.team_id == team_id
    if account_id is not None:
        where = and_(where, OwnerSession.owner_id == account_id)
    await db.execute(
        update(OwnerSession).where(where).values(team_id=None).execution_options(synchronize_session=False)
    )


async def sign_out(db: AsyncSession, token: str) -> None:
    await db.execute(delete(OwnerSession).where(OwnerSession.digest == digest(token)))


async def change_password(db: AsyncSession, *, member: Member, current: str, new: str, keep_token: str) -> None:
    owner = await db.get(Owner, member.account_id)
    assert owner is not None
    if await accounts.authenticate_password(db, email=owner.email, password=current) is None:
        raise SignInRefused("The current password is not right.")
    accounts.check_password_strength(new)
    await db.execute(update(Owner).where(Owner.id == owner.id).values(password_hash=accounts.hash_password(new)))
    # Every other signed-in browser must sign in again with the new password.
    await db.execute(
        delete(OwnerSession).where(OwnerSession.owner_id == owner.id, OwnerSession.digest != digest(keep_token))
    )
