"""Rate limits: an operator's caps on requests per client address, assistant, link and session.

Counted by the `limits` package, in this process's memory or, with `PORTICO_REDIS_URL`, in Redis so
that every instance shares the counts; never in the database. Checked before the gate, so a limited
request costs no query and writes nothing.

Fixed windows, not moving ones: one counter per key (a moving window keeps one entry per request,
600 for an assistant's starts, and `limits`' in-memory moving window sweeps every key in a thread
hop), and the window's end is an exact `Retry-After`. The price is that a client may send up to
twice a limit across the end of one window and the start of the next; for caps against abuse that
is fine.

Client addresses are keyed by an HMAC with the server's secret: Redis and memory hold no address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import limits
import redis.asyncio
from fastapi import Depends, Request
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter, RateLimiter
from limits.errors import StorageError

from portico.access.gate import Refused
from portico.config import Settings
from portico.errors import InvalidToken, PorticoError
from portico.kit.crypto import digest
from portico.kit.i18n import format_number, gettext, ngettext
from portico.kit.net import client_address, forwarded_by_untrusted_proxy
from portico.vocabulary import INVALID_SESSION_TOKEN, REFUSAL_MESSAGES, Refusal

log = logging.getLogger("portico")
T = TypeVar("T")

# After Redis fails, this process counts in memory and asks Redis again after this many seconds.
REDIS_RETRY_SECONDS = 5.0
# A Redis that hangs delays a request by at most this, once per retry period.
REDIS_TIMEOUT_SECONDS = 0.5

# Locked-out addresses remembered before the expired ones are dropped.
MAX_LOCKED_OUT = 10_000

# Refusals that mean "this secret is wrong": a guessed key or public id. Wrong access codes are
# counted apart, per assistant and address (`count_failed_secret`).
FAILED_SECRET_REFUSALS = {Refusal.LINK_INVALID, Refusal.NOT_FOUND}


class RateLimited(PorticoError):
    status = 429
    code = Refusal.RATE_LIMITED.value

    def __init__(self, retry_after: int) -> None:
        # handlers.py sends it as the `Retry-After` header.
        self.retry_after = retry_after
        again = gettext("You can try again in {wait}.").format(wait=_wait(retry_after))
        super().__init__(f"{gettext(REFUSAL_MESSAGES[Refusal.RATE_LIMITED])} {again}")


def _wait(seconds: int) -> str:
    if seconds < 120:
        return ngettext("{count} second", "{count} seconds", seconds).format(count=format_number(seconds))
    minutes = math.ceil(seconds / 60)
    return ngettext("{count} minute", "{count} minutes", minutes).format(count=format_number(minutes))


class Limiter:
    """The limits of one app, and where they are counted."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.session_starts = limits.parse(settings.rate_session_starts)
        self.lookups = limits.parse(settings.rate_lookups)
        self.messages = limits.parse(settings.rate_messages)
        self.failed_secrets = limits.parse(settings.rate_failed_secrets)
        self.assistant_starts = limits.parse(settings.rate_assistant_starts)
        self._trusted = settings.trusted_proxy_networks
        self._warned_untrusted_proxy = False
        self._secret = secret.encode()
        self._memory: RateLimiter = FixedWindowRateLimiter(MemoryStorage())
        self._redis: RateLimiter | None = None
        self._pool: redis.asyncio.ConnectionPool | None = None
        if settings.redis_url:
            self._pool = redis.asyncio.ConnectionPool.from_url(
                settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="portico-limits",
                connection_pool=self._pool,  # type: ignore[arg-type]  # limits types its **options as scalars; redis-py takes a pool
            )
            self._redis = FixedWindowRateLimiter(storage)
        self._redis_retry_at = 0.0
        self._on_memory = False
        # Keyed addresses past their failed secrets, and when their window ends (time.monotonic).
        self._locked_out: dict[str, float] = {}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    def address(self, request: Request) -> str:
        """The client's address, keyed (an HMAC): what the limits count, never the address itself."""
        if not self._warned_untrusted_proxy and forwarded_by_untrusted_proxy(request, self._trusted):
            # Once per process: behind a proxy Portico is not told to trust, every guest has the
            # proxy's address, so one guest's wrong guesses lock everyone out.
            self._warned_untrusted_proxy = True
            log.warning(
                "Requests from a loopback or private address carry X-Forwarded-For, which is not trusted: "
                "every client behind that proxy counts as one address for rate limits and lock-outs. "
                "If it is your reverse proxy, set PORTICO_TRUSTED_PROXIES to its address."
            )
        return hmac.new(self._secret, client_address(request, self._trusted).encode(), hashlib.sha256).hexdigest()

    async def hit(self, limit: limits.RateLimitItem, *key: str) -> None:
        """Count one request against `limit` for `key`; raises `RateLimited` past it."""
        if not await self._run(lambda limiter: limiter.hit(limit, *key)):
            await self._refuse(limit, *key)

    def refuse_if_locked_out(self, address: str) -> None:
        """Raises `RateLimited` when this address has sent too many wrong secrets.

        Answered from this process's memory, without asking the storage: the failures themselves are
        counted in the storage (shared with Redis), and the instance whose count went past the limit
        remembers the lock-out. On N instances a guesser gets at most one more try per instance
        before each one knows; a request saves a Redis round trip (bench/abuse.py).
        """
        until = self._locked_out.get(address)
        if until is not None:
            remaining = until - time.monotonic()
            if remaining > 0:
                raise RateLimited(math.ceil(remaining))
            del self._locked_out[address]

    def refuse_if_guessing_code(self, address: str, assistant_id: int) -> None:
        """Raises `RateLimited` when this address has sent too many wrong access codes for this assistant."""
        self.refuse_if_locked_out(_code_key(address, assistant_id))

    async def count_failure(self, address: str, *, assistant_id: int | None = None) -> None:
        """A wrong key, public id or token from this address, or with `assistant_id` a wrong access
        code for that assistant; the one that uses up the limit locks the address (or the address
        for that assistant's code) out, and past the limit, this one is refused too."""
        locked = address if assistant_id is None else _code_key(address, assistant_id)
        key = ("failed-secrets", address) if assistant_id is None else ("failed-codes", str(assistant_id), address)
        allowed = await self._run(lambda limiter: limiter.hit(self.failed_secrets, *key))
        # Failures are rare: a second round trip here costs the ordinary requests nothing.
        stats = await self._run(lambda limiter: limiter.get_window_stats(self.failed_secrets, *key))
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        if not allowed or stats.remaining <= 0:
            if len(self._locked_out) >= MAX_LOCKED_OUT:
                now = time.monotonic()
                self._locked_out = {a: t for a, t in self._locked_out.items() if t > now}
            self._locked_out[locked] = time.monotonic() + retry_after
        if not allowed:
            raise RateLimited(retry_after)

    async def _refuse(self, limit: limits.RateLimitItem, *key: str) -> None:
        stats = await self._run(lambda limiter: limiter.get_window_stats(limit, *key))
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def _run(self, step: Callable[[RateLimiter], Awaitable[T]]) -> T:
        # Redis unreachable must not refuse guests: count in memory meanwhile (per instance, so
        # N instances allow up to N times a limit), say so once, and go back when Redis answers.
        if self._redis is None or time.monotonic() < self._redis_retry_at:
            return await step(self._memory)
        try:
            result = await step(self._redis)
        except StorageError as exc:
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            if not self._on_memory:
                self._on_memory = True
                log.warning(
                    "Redis does not answer (%s); rate limits are counted in this instance's memory until it does",
                    type(exc.storage_error).__name__,
                )
            return await step(self._memory)
        if self._on_memory:
            self._on_memory = False
            log.info("Redis answers again; rate limits are shared again")
        return result


def _code_key(address: str, assistant_id: int) -> str:
    return f"code:{assistant_id}:{address}"


class Guard:
    """One request's view of the limits: its client's keyed address."""

    def __init__(self, limiter: Limiter, address: str) -> None:
        self.limiter = limiter
        self.address = address

    def refuse_if_locked_out(self, *, access_code: str | None, key: str | None) -> None:
        """For the routes that take an access code: a request with a code and no key is judged by
        `code_lockout` once its assistant is known; any other by its address, as every guest route."""
        if access_code is None or key is not None:
            self.limiter.refuse_if_locked_out(self.address)

    def code_lockout(self, assistant_id: int | None) -> None:
        """Called by the gate's caller before it checks an access code (with the assistant's id),
        or when the code will not be checked (None). A right code gets through an address locked
        out for other wrong secrets (someone else behind the same address guessing keys), but not
        once this address has guessed this assistant's code too often."""
        if assistant_id is None:
            self.limiter.refuse_if_locked_out(self.address)
        else:
            self.limiter.refuse_if_guessing_code(self.address, assistant_id)

    async def assistant_start(self, *, public_id: str | None, key: str | None) -> None:
        """A session start against its assistant's cap (by public id, or by link when only a key is given)."""
        target = public_id if public_id is not None else digest(key or "")
        await self.limiter.hit(self.limiter.assistant_starts, "assistant-starts", target)


async def count_failed_secret(request: Request, error: Exception) -> None:
    """A wrong key, public id, access code or session token counts against its client's address.

    Called by the one error handler (handlers.py) for the errors guest routes raise, so a request
    that succeeds pays nothing for it (a `yield` dependency around every guest route cost more
    than the limiter itself). Wrong owner tokens are counted where they are checked (deps.py)."""
    failed = (isinstance(error, Refused) and error.refusal.code in FAILED_SECRET_REFUSALS) or (
        isinstance(error, InvalidToken) and error.code == INVALID_SESSION_TOKEN
    )
    limiter: Limiter | None = getattr(request.app.state, "limiter", None)
    if limiter is None:
        return
    if failed:
        await limiter.count_failure(limiter.address(request))
    elif (
        isinstance(error, Refused)
        and error.refusal.code == Refusal.ACCESS_CODE_INVALID
        and error.refusal.assistant_id is not None
    ):
        await limiter.count_failure(limiter.address(request), assistant_id=error.refusal.assistant_id)


async def _guard(request: Request, *, lockout: bool = True) -> Guard:
    limiter: Limiter = request.app.state.limiter
    guard = Guard(limiter, limiter.address(request))
    # An address that has guessed wrong too often is refused whatever it sends, right or wrong
    # (but owner tokens, identity/deps.py, and access codes, `Guard.code_lockout`).
    if lockout:
        limiter.refuse_if_locked_out(guard.address)
    return guard


async def _secrets(request: Request) -> Guard:
    return await _guard(request)


async def _lookups(request: Request) -> Guard:
    guard = await _guard(request)
    await guard.limiter.hit(guard.limiter.lookups, "lookups", guard.address)
    return guard


async def _starts(request: Request) -> Guard:
    guard = await _guard(request)
    await guard.limiter.hit(guard.limiter.session_starts, "session-starts", guard.address)
    return guard


# The chat page's lookup and start, which may carry an access code: the route calls
# `Guard.refuse_if_locked_out` with its body, and the service `Guard.code_lockout`.
async def _code_lookups(request: Request) -> Guard:
    guard = await _guard(request, lockout=False)
    await guard.limiter.hit(guard.limiter.lookups, "lookups", guard.address)
    return guard


async def _code_starts(request: Request) -> Guard:
    guard = await _guard(request, lockout=False)
    await guard.limiter.hit(guard.limiter.session_starts, "session-starts", guard.address)
    return guard


async def _messages(request: Request) -> Guard:
    guard = await _guard(request)
    await guard.limiter.hit(guard.limiter.messages, "messages", _session_key(request))
    return guard


async def _feedback(request: Request) -> Guard:
    guard = await _guard(request)
    # As many ratings as messages, in a count of their own: rating never uses up a guest's messages.
    await guard.limiter.hit(guard.limiter.messages, "feedback", _session_key(request))
    return guard


def _session_key(request: Request) -> str:
    # Per session, known by its token (one token, one session): a stranger sending messages to
    # someone else's session id with wrong tokens uses up their own failed secrets, not its limit.
    # Parsed as HTTPBearer does, so spelling the header differently does not make a new key.
    return digest(request.headers.get("authorization", "").partition(" ")[2].strip())


# The routes' dependencies: plain ones (failures are counted by the error handler).
GuardSecrets = Annotated[Guard, Depends(_secrets)]
GuardLookups = Annotated[Guard, Depends(_lookups)]
GuardStarts = Annotated[Guard, Depends(_starts)]
GuardCodeLookups = Annotated[Guard, Depends(_code_lookups)]
GuardCodeStarts = Annotated[Guard, Depends(_code_starts)]
GuardMessages = Annotated[Guard, Depends(_messages)]
GuardFeedback = Annotated[Guard, Depends(_feedback)]
