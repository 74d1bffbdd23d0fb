"""Several instances behind nginx, as docs/deploy.md sets them up: three `portico serve` processes on
one PostgreSQL and one Redis, behind deploy/nginx-portico.conf. Guests chat through nginx while one
instance is killed with kill -9; nothing committed is lost, every session goes on, and a cut-off made
through one instance still reaches the streams of the others within a second.

PostgreSQL and Redis only (SQLite is one machine's database, for one instance)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from sqlalchemy import make_url, select, update

from portico.chat.sweep import STALE_REPLY_SECONDS, sweep_once
from portico.config import Settings
from portico.health import migrations_head
from portico.migrations.run import MIGRATIONS_LOCK
from portico.models import Message
from portico.vocabulary import Role
from tests.chat_helpers import bearer
from tests.conftest import IN_CI, SECRET, Person, make_person, start
from tests.nginx import UPSTREAM_HEADER, nginx_binary, nginx_server
from tests.servers import PORTICO, free_port, portico_env
from tests.test_rate_limits import REDIS_URL
from tests.upstream import SLOW_CHUNKS, upstream_server

# The issue asks for 50 guests; on this 2-core machine, shared with other test runs, 50 slow replies
# at once (1,000 tokens a second through nginx and three instances) still leave the cut-off its second.
GUESTS = 50
# Seen before the kill: 1.5 s of the slow model's reply, so each has been saved at least once.
TOKENS_BEFORE_KILL = 30
# The guest may have seen up to a second (20 words) more than the last save, and some slack.
WORDS_LOST_AT_MOST = 25


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")


@dataclass
class Fleet:
    instances: list[Instance]
    front: str  # nginx


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: instances share one database, which SQLite is not for")
    nginx_binary()
    try:
        with redis.Redis.from_url(REDIS_URL, socket_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); CI=true makes this test mandatory.")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); set PORTICO_TEST_REDIS_URL or start Redis.")
    # A secret of its own: rate-limit keys in Redis are keyed by it, so this test's thousand requests
    # from 127.0.0.1 never count against tests/test_rate_limits.py's tight limits on the same Redis.
    return settings.model_copy(update={"secret_key": "fleet-" + SECRET, "redis_url": REDIS_URL})


@contextmanager
def instances(settings: Settings, folder: Path, count: int) -> Iterator[list[Instance]]:
    """`count` instances started at once, each ready (/readyz 200) before this yields."""
    env = portico_env(
        settings,
        PORTICO_REDIS_URL=settings.redis_url,
        PORTICO_TRUSTED_PROXIES="127.0.0.1",
        # The PostgreSQL server is shared with other test runs (max_connections 100): a small pool
        # each, which also shows that a few connections serve many guests.
        PORTICO_DB_POOL_SIZE="5",
    )
    started: list[Instance] = []
    ports: set[int] = set()
    try:
        for number in range(count):
            port = free_port()
            while port in ports:
                port = free_port()
            ports.add(port)
            with (folder / f"instance{number}.log").open("wb") as log:
                process = subprocess.Popen(
                    [PORTICO, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            started.append(Instance(process, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 120  # three imports at once on a busy 2-core machine
        for number, instance in enumerate(started):
            while True:
                try:
                    if httpx.get(f"{instance.url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if instance.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"instance {number} is not ready:\n{(folder / f'instance{number}.log').read_text()}"
                    )
                time.sleep(0.1)
        yield started
    finally:
        for instance in started:
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in started:
            try:
                instance.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait(timeout=10)


@pytest.fixture
def fleet(fleet_settings: Settings, tmp_path: Path) -> Iterator[Fleet]:
    with (
        instances(fleet_settings, tmp_path, 3) as three,
        nginx_server([i.url for i in three], tmp_path / "nginx") as front,
    ):
        yield Fleet(three, front)


@pytest.fixture
def slow_engine() -> Iterator[dict]:
    with upstream_server() as (base_url, _seen):
        yield {"type": "openai", "base_url": base_url, "model": "slow"}


@dataclass(eq=False)  # guests are told apart by identity
class Guest:
    session: dict
    arrivals: list[tuple[float, str, dict]] = field(default_factory=list)
    route: str = ""  # the instances nginx tried for the last message: "a, b" when a refused it
    upstream: str = ""  # the one that answered
    broken: bool = False  # the last stream ended without its last event

    @property
    def tokens(self) -> int:
        return sum(1 for _, event, _ in self.arrivals if event == "token")

    @property
    def seen(self) -> str:
        return "".join(data["text"] for _, event, data in self.arrivals if event == "token")

    @property
    def last(self) -> tuple[float, str, dict]:
        return self.arrivals[-1] if self.arrivals else (0.0, "nothing", {})


async def say(http: httpx.AsyncClient, guest: Guest, content: str) -> None:
    """Sends a message and reads its reply as events, noting which instance answered."""
    guest.arrivals, guest.broken = [], False
    headers = {**bearer(guest.session), "Accept": "text/event-stream"}
    path = f"/api/v1/chat/sessions/{guest.session['session_id']}/messages"
    try:
        async with http.stream("POST", path, json={"content": content}, headers=headers) as response:
            assert response.status_code == 200, (response.status_code, await response.aread())
            guest.route = response.headers[UPSTREAM_HEADER]
            guest.upstream = guest.route.split(",")[-1].strip()
            event = "message"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    guest.arrivals.append((time.monotonic(), event, json.loads(line[5:])))
    except httpx.HTTPError:
        guest.broken = True


async def until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    # Asked only after a first wait, so that the tasks just created have begun (and reset what they saw).
    await asyncio.sleep(0.05)
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


async def replies_of(app: object, session_ids: list[int]) -> dict[int, list[Message]]:
    async with app.state.sessionmaker() as db:  # type: ignore[attr-defined]
        rows = await db.scalars(select(Message).where(Message.session_id.in_(session_ids)).order_by(Message.id))
        by_session: dict[int, list[Message]] = {session_id: [] for session_id in session_ids}
        for message in rows:
            by_session[message.session_id].append(message)
        return by_session


async def test_guests_chat_on_through_nginx_when_an_instance_is_killed_mid_reply(
    fleet: Fleet, slow_engine: dict, app: object
):
    first, second, victim = fleet.instances
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as direct,
        httpx.AsyncClient(base_url=fleet.front, timeout=60, limits=httpx.Limits(max_connections=GUESTS * 2)) as front,
    ):
        owner: Person = await make_person(app, direct, "alice@example.com")
        assistant = await owner.new_assistant(engine=slow_engine)
        started = await asyncio.gather(*(start(front, public_id=assistant["public_id"]) for _ in range(GUESTS)))
        assert [r.status_code for r in started] == [201] * GUESTS, [r.text for r in started if r.status_code != 201]
        guests = [Guest(r.json()) for r in started]
        ids = [g.session["session_id"] for g in guests]

        # Everyone asks; once each has seen a good part of the reply, one instance dies.
        chatting = [asyncio.create_task(say(front, g, f"Hello, I am guest {n}")) for n, g in enumerate(guests)]
        await until(lambda: all(g.tokens >= TOKENS_BEFORE_KILL for g in guests), 60, "every reply under way")
        cut_off = [g for g in guests if g.upstream == victim.address and g.last[1] == "token"]
        assert cut_off, "nginx sent no stream to the instance about to be killed"
        victim.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.to_thread(victim.process.wait, 10)
        await asyncio.wait_for(asyncio.gather(*chatting), 60)
        replied = time.monotonic()
        assert [g for g in guests if g.broken] == cut_off
        assert all(g.last[1] == "done" and g.tokens == SLOW_CHUNKS for g in guests if g not in cut_off)

        # The dead instance is not ready (nothing answers); the others are.
        with pytest.raises(httpx.ConnectError):
            await front.get(f"{victim.url}/readyz")
        for instance in fleet.instances[:2]:
            assert (await front.get(f"{instance.url}/readyz")).status_code == 200

        # Each cut reply was saved as it grew: what the guest saw, at most a second short.
        replies = await replies_of(app, ids)
        orphans = {}
        for n, g in enumerate(guests):
            mine = replies[g.session["session_id"]]
            assert [m.content for m in mine if m.role == Role.GUEST] == [f"Hello, I am guest {n}"]
            (reply,) = [m for m in mine if m.role == Role.ASSISTANT]
            if g in cut_off:
                assert reply.duration_ms is None and reply.error_code is None
                assert g.seen.startswith(reply.content or "")
                assert len(g.seen.split()) - len((reply.content or "").split()) <= WORDS_LOST_AT_MOST
                orphans[reply.id] = reply
            else:
                assert reply.error_code is None and len((reply.content or "").split()) == SLOW_CHUNKS

        # The sweep (any instance's, run here) marks them interrupted once they are stale: made so
        # here rather than waiting STALE_REPLY_SECONDS.
        async with app.state.sessionmaker() as db, db.begin():
            for reply in orphans.values():
                stale = reply.saved_at - timedelta(seconds=STALE_REPLY_SECONDS + 1)
                await db.execute(update(Message).where(Message.id == reply.id).values(saved_at=stale))

        async def all_marked() -> bool:
            await sweep_once(app.state.sessionmaker)  # skips a run while another instance sweeps
            replies = await replies_of(app, ids)
            marked = [m for ms in replies.values() for m in ms if m.error_code == "interrupted"]
            return {m.id for m in marked} == set(orphans) and all(m.content == orphans[m.id].content for m in marked)

        deadline = time.monotonic() + 30
        while not await all_marked():
            assert time.monotonic() < deadline, "the sweep did not mark the orphaned replies interrupted"
            await asyncio.sleep(0.2)

        # Every session answers its next message through nginx, those of the dead instance too. Once
        # the site's fail_timeout (5 s) has passed, nginx tries the dead instance again: the message it
        # sends there is refused and passed on to another instance, POST though it is. (And well over
        # 5 s after the last reply: the instances keep idle connections to the model server 5 s, as the
        # model server does, and a message sent at that very moment may find its connection closing.)
        await asyncio.sleep(max(killed + 5.5, replied + 7) - time.monotonic())
        await asyncio.wait_for(asyncio.gather(*(say(front, g, "Are you still there?") for g in guests)), 90)
        unanswered = [g for g in guests if g.broken or g.last[1] != "done" or g.tokens != SLOW_CHUNKS]
        assert not unanswered, [(g.route, g.broken, g.tokens, g.arrivals[-1:]) for g in unanswered]
        assert {g.upstream for g in guests} <= {first.address, second.address}
        assert any(g.route.startswith(victim.address) for g in guests), [g.route for g in guests]
        replies = await replies_of(app, ids)
        for n, g in enumerate(guests):
            mine = replies[g.session["session_id"]]
            assert [m.content for m in mine if m.role == Role.GUEST] == [
                f"Hello, I am guest {n}",
                "Are you still there?",
            ]
            assert [m.error_code for m in mine if m.role == Role.ASSISTANT] == [
                "interrupted" if g in cut_off else None,
                None,
            ]

        # Offline, switched through one instance, cuts the streams on the other within a second.
        chatting = [asyncio.create_task(say(front, g, "One more thing")) for g in guests]
        await until(lambda: all(g.tokens >= 1 for g in guests), 60, "every reply under way")
        switched = await owner.request(
            "PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"}
        )
        assert switched.status_code == 200, switched.text
        acted = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*chatting), 30)
        assert any(g.upstream != first.address for g in guests), "no stream ran on another instance"
        for g in guests:
            when, event, data = g.last
            assert event == "error" and data["code"] == "assistant_offline", g.arrivals[-3:]
            assert when - acted < 1.0, f"a stream on {g.upstream} was cut {when - acted:.2f} s after the switch"


async def test_a_guest_cannot_pose_as_another_address_through_nginx(fleet_settings: Settings, tmp_path: Path):
    # Counted in the instance's memory (no Redis), so that no other test's starts count here.
    tight = fleet_settings.model_copy(update={"rate_session_starts": "2/minute", "redis_url": ""})
    with instances(tight, tmp_path, 1) as (one,), nginx_server([one.url], tmp_path / "nginx") as front:
        async with httpx.AsyncClient(base_url=front, timeout=30) as http:
            answers = [
                await http.post(
                    "/api/v1/chat/sessions", json={"public_id": "nobody"}, headers={"X-Forwarded-For": f"203.0.113.{n}"}
                )
                for n in range(3)
            ]
    # Each start is counted (an unknown assistant too) against the one address nginx saw, whatever the
    # guest wrote: an appended header would have made three addresses of them.
    assert [a.status_code for a in answers] == [404, 404, 429], [a.text for a in answers]


async def test_two_upgrades_at_once_wait_for_each_other_and_both_succeed(postgres_url: str, tmp_path: Path):
    url = make_url(postgres_url)
    name = f"{url.database}_upgrades"
    fresh = url.set(database=name).render_as_string(hide_password=False).replace("postgresql://", "postgres://", 1)
    admin = await asyncpg.connect(postgres_url.replace("postgresql://", "postgres://", 1))
    upgrades: list[asyncio.subprocess.Process] = []
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        # Someone is upgrading already: this connection holds the lock an upgrade takes.
        holder = await asyncpg.connect(fresh)
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
        env = portico_env(Settings(database_url=fresh.replace("postgres://", "postgresql://", 1), data_dir=tmp_path))
        for _ in range(2):
            upgrades.append(
                await asyncio.create_subprocess_exec(
                    PORTICO, "db", "upgrade", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
                )
            )
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'advisory'"
        deadline = time.monotonic() + 60
        while await admin.fetchval(waiting, name) < 2:
            assert all(u.returncode is None for u in upgrades), "an upgrade ended without waiting for the lock"
            assert time.monotonic() < deadline, "the two upgrades did not wait for the lock"
            await asyncio.sleep(0.1)
        assert await holder.fetchval("SELECT to_regclass('alembic_version')") is None
        await holder.close()  # the first upgrade goes on; the second waits for it, then has nothing to do
        outputs = [await asyncio.wait_for(u.communicate(), 60) for u in upgrades]
        assert [u.returncode for u in upgrades] == [0, 0], outputs
        check = await asyncpg.connect(fresh)
        try:
            versions = [row["version_num"] for row in await check.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await check.close()
        assert versions == [migrations_head()]
    finally:
        for upgrade in upgrades:
            if upgrade.returncode is None:
                upgrade.kill()
                await upgrade.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
