"""The public link's access code: "anyone with the link and the code".

Stored as an argon2 hash, like owners' passwords, and never shown again. Verifying one costs tens
of milliseconds of CPU on purpose, so it runs in a worker thread (argon2 releases the GIL), and
only for an assistant that has a code.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_LENGTH = 4
MAX_LENGTH = 64


async def hash_code(code: str) -> str:
    return await asyncio.to_thread(_hasher.hash, code)


def _matches(code_hash: str, code: str) -> bool:
    try:
        return _hasher.verify(code_hash, code)
    except (VerificationError, InvalidHashError):
        return False


async def matches(code_hash: str, code: str) -> bool:
    return await asyncio.to_thread(_matches, code_hash, code)
