"""Owners' API tokens: prefixed, stored as their digest, each acting as one member of one team."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import InvalidToken, NotFound
from portico.identity.roles import Member
from portico.kit.crypto import digest, is_well_formed, new_token
from portico.models import ApiToken, Membership, Owner, Team, utcnow
from portico.vocabulary import TeamRole

TOKEN_PREFIX = "pto_"


async def list_api_tokens(db: AsyncSession, *, member: Member) -> list[ApiToken]:
    """The member's own tokens in this team: a token always acts as the one who made it."""
    query = (
        select(ApiToken)
        .where(ApiToken.owner_id == member.account_id, ApiToken.team_id == member.team_id)
        .order_by(ApiToken.id.desc())
    )
    return list(await db.scalars(query))


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


async def revoke_member_tokens(db: AsyncSession, *, team_id: int, account_id: int) -> None:
    """A removed member's tokens stop at once, and stay stopped if they are invited again."""
    await db.execute(
        update(ApiToken)
        .where(ApiToken.team_id == team_id, ApiToken.owner_id == account_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
