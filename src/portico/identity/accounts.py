"""Accounts: creating one, finding one, and passwords (argon2id)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.errors import Conflict, InvalidRequest, NotFound
from portico.identity import members
from portico.models import Owner

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


class EmailTaken(Conflict):
    """For the operator and the owner who asked; pages an outsider can reach say it neutrally."""

    code = "email_taken"


def check_password_strength(password: str) -> None:
    if len(password) < 8:
        raise InvalidRequest("The password must be at least 8 characters long.")
    if len(password) > 1024:
        raise InvalidRequest("The password must be at most 1,024 characters long.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def count_owners(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Owner)) or 0


async def create_owner(db: AsyncSession, *, email: str, password: str, name: str = "") -> Owner:
    """`name`: the person's, optional; it only names their own team."""
    email = normalise_email(email)
    check_password_strength(password)
    if await db.scalar(select(Owner.id).where(Owner.email == email)) is not None:
        raise EmailTaken(f"An owner with the email {email} already exists.")
    owner = Owner(email=email, password_hash=_hasher.hash(password))
    db.add(owner)
    await db.flush()
    # Every account has a team of its own, where it is the Owner (issue 15).
    await members.create_own_team(db, account=owner, person=name)
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
