from __future__ import annotations

from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import Conflict, InvalidRequest, InvalidToken, NotFound
from portico.kit.crypto import digest, is_well_formed, new_token
from portico.models import ApiToken, Membership, Owner, Team, utcnow
from portico.teams import service as teams
from portico.teams.roles import Member
from portico.vocabulary import TeamRole

TOKEN_PREFIX = "pto_"
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified when the email is unknown, so that sign-in takes as long either way.
    return _hasher.hash("portico-timing-equaliser")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidRequest(f"'{email}' is not an email address.")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < 8:
        raise InvalidRequest("The password must be at least 8 characters long.")
    if len(password) > 1024:
        raise InvalidRequest("The password must be at most 1,024 characters long.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def count_owners(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Owner)) or 0


async def list_api_tokens(db: AsyncSession, *, member: Member) -> list[ApiToken]:
    """The member's own tokens in this team: a token always acts as the one who made it."""
    query = (
        select(ApiToken)
        .where(ApiToken.owner_id == member.account_id, ApiToken.team_id == member.team_id)
        .order_by(ApiToken.id.desc())
    )
    return list(await db.scalars(query))


async def create_owner(db: AsyncSession, *, email: str, password: str) -> Owner:
    email = normalise_email(email)
    check_password_strength(password)
    if await db.scalar(select(Owner.id).where(Owner.email == email)) is not None:
        raise Conflict(f"An owner with the email {email} already exists.")
    owner = Owner(email=email, password_hash=_hasher.hash(password))
    db.add(owner)
    await db.flush()
    # Every account has a team of its own, where it is the Owner (issue 15).
    await teams.create_own_team(db, account=owner)
    return owner


async def get_account(db: AsyncSession, account_id: int) -> Owner:
    account = await db.get(Owner, account_id)
    if account is None:
        raise NotFound("This account no longer exists.")
    return account


async def get_owner_by_email(db: AsyncSession, email: str) -> Owner | None:
    return await db.scalar(select(Owner).where(Owner.email == email.strip().lower()))


async def authenticate_password(db: AsyncSession, *, email: str, password: str) -> Owner | None:
    owner = await get_owner_by_email(db, email)
    try:
        _hasher.verify(owner.password_hash if owner else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return owner


async def create_api_token(db: AsyncSession, *, member: Member, name: str) -> tuple[ApiToken, str]:
    assert member.account_id is not None, "the operator has no tokens"
    plain = new_token(TOKEN_PREFIX)
    token = ApiToken(owner_id=member.account_id, team_id=member.team_id, name=name, digest=digest(plain))
    db.add(token)
    await db.flush()
    return token, plain


async def member_for_token(db: AsyncSession, plain: str) -> Member:
    """The token's member with their role as it is now: a demoted Admin's token loses Admin rights
    at once, a removed member's token stops at once. One query on every owner request."""
    if not is_well_formed(plain, TOKEN_PREFIX):
        raise InvalidToken("This is not a Portico API token (they start with 'pto_').")
    row = (
        await db.execute(
            select(ApiToken, Owner.email, Team.name, Membership.role)
            .join(Owner, Owner.id == ApiToken.owner_id)
            .join(Team, Team.id == ApiToken.team_id)
            .outerjoin(
                Membership, (Membership.team_id == ApiToken.team_id) & (Membership.owner_id == ApiToken.owner_id)
            )
            .where(ApiToken.digest == digest(plain), Team.deleted_at.is_(None))
        )
    ).first()
    if row is None or row[0].revoked_at is not None:
        raise InvalidToken("This API token is unknown or has been revoked.")
    token, email, team_name, role = row
    if role is None:
        raise InvalidToken("This API token's member is no longer in its team.")
    now = utcnow()
    # Touch last_used_at at most once a minute, not a write on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    return Member(
        account_id=token.owner_id, email=email, team_id=token.team_id, team_name=team_name, role=TeamRole(role)
    )


async def revoke_api_token(db: AsyncSession, *, member: Member, token_id: int) -> None:
    result = await db.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.owner_id == member.account_id,
            ApiToken.team_id == member.team_id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .returning(ApiToken.id)
    )
    if result.scalar_one_or_none() is None:
        raise NotFound("No active API token with this id.")
