"""Background chores (the sweep, the rollup, the purge): a failure is logged and the chore goes on.

A chore that swallowed its errors would leave Metrics or Logs quietly stale; one that died on its
first error would do the same until the next restart. So each run's failure is logged with its
traceback (keys redacted by kit/logs.py), and the next run comes on time.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("portico.chores")


@contextmanager
def failures_logged(name: str) -> Iterator[None]:
    """Log an exception raised in the block (with its traceback) instead of raising it."""
    try:
        yield
    except Exception:
        log.exception("chore %s failed", name)


async def run_every(name: str, seconds: float, chore: Callable[[], Awaitable[object]]) -> None:
    """Run `chore` every `seconds`, first after one wait, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        with failures_logged(name):
            await chore()


async def this_instance_runs(db: AsyncSession, name: str) -> bool:
    """Whether this instance does chore `name` now: on PostgreSQL the one whose transaction takes the
    chore's advisory lock (held until that transaction ends), so N instances do the work of one
    instead of the same rows N times. SQLite has one instance."""
    if db.get_bind().dialect.name != "postgresql":
        return True
    key = zlib.crc32(f"portico-chore:{name}".encode())
    taken = await db.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    return bool(taken)
