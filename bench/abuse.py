"""The rate limiter's cost on the session-start and message paths: CPU per request, with and without.

Runs the real app in this process (httpx's ASGITransport, SQLite in a temporary folder, the builtin
engine), so the CPU it reads (`time.process_time`, every thread of this process) is the server's
plus the client's; the client's part is the same with and without the limiter, so the difference
is the limiter's. "Without" replaces `app.state.limiter` by one whose checks do nothing.

Two measurements, for the memory backend and the Redis backend (--redis-url, default
redis://127.0.0.1:6379/5; only the keys this script made are deleted):
  limiter alone  the calls one request makes (keyed address, the lock-out check and two hits for
                 a start; the check and one hit for a message), in a loop: the cost itself
  whole request  POST /api/v1/chat/sessions and POST .../messages, limiter on and off in
                 alternating rounds (the machine is shared, so compare within one run)

The limits are set high enough never to refuse: what is measured is counting, not refusing.

    .venv/bin/python bench/abuse.py
    .venv/bin/python bench/abuse.py --requests 400 --rounds 4 --redis-url redis://127.0.0.1:6379/5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import redis.asyncio
import uvloop
from starlette.requests import Request

from benchkit import demo_credentials, fmt, machine_line, source_line
from portico.access.ratelimit import Limiter
from portico.app import create_app
from portico.config import load_settings
from portico.demo import seed_demo

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
BASE_URL = "http://portico.bench"
NEVER = "10000000/hour"
KEY_PREFIX = "portico-limits"


class NoLimits(Limiter):
    async def hit(self, limit, *key):  # type: ignore[no-untyped-def]
        return None

    def refuse_if_locked_out(self, address):  # type: ignore[no-untyped-def]
        return None


def fake_request(address: str) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"authorization", b"Bearer pts_x")]}
    return Request({**scope, "client": (address, 40000), "query_string": b""})


async def cpu_per_call(step: Callable[[int], Awaitable[object]], count: int) -> float:
    """Milliseconds of this process's CPU per call of `step`."""
    start = time.process_time()
    for i in range(count):
        await step(i)
    return (time.process_time() - start) * 1000 / count


async def limiter_alone(limiter: Limiter, count: int) -> tuple[float, float]:
    async def start_path(i: int) -> None:
        address = limiter.address(fake_request(f"198.51.100.{i % 200}"))
        limiter.refuse_if_locked_out(address)
        await limiter.hit(limiter.session_starts, "session-starts", address)
        await limiter.hit(limiter.assistant_starts, "assistant-starts", "public-id")

    async def message_path(i: int) -> None:
        address = limiter.address(fake_request(f"198.51.100.{i % 200}"))
        limiter.refuse_if_locked_out(address)
        await limiter.hit(limiter.messages, "messages", f"session-{i % 50}")

    await cpu_per_call(start_path, 50)  # warm-up: connections, scripts loaded
    return await cpu_per_call(start_path, count), await cpu_per_call(message_path, count)


async def whole_requests(redis_url: str, requests: int, rounds: int, folder: Path) -> dict[str, list[float]]:
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'portico.db'}",
        data_dir=folder,
        secret_key=SECRET,
        base_url=BASE_URL,
        redis_url=redis_url,
        **{f"rate_{n}": NEVER for n in ("session_starts", "lookups", "messages", "failed_secrets", "assistant_starts")},
    )
    app = create_app(settings)
    results: dict[str, list[float]] = {"start on": [], "start off": [], "message on": [], "message off": []}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            async with app.state.sessionmaker() as db:
                await seed_demo(db, settings)  # an owner and an API token (and an assistant not used here)
                await db.commit()
            auth = {"Authorization": f"Bearer {demo_credentials(folder)['api_token']}"}
            created = await http.post(
                "/api/v1/assistants", json={"name": "Bench", "knowledge": "Hours: 9 to 5."}, headers=auth
            )
            assistant = created.json()
            base = f"/api/v1/assistants/{assistant['id']}"
            await http.post(f"{base}/publish", headers=auth)
            await http.put(f"{base}/status", json={"status": "live"}, headers=auth)
            body = {"public_id": assistant["public_id"]}
            real = app.state.limiter
            off = NoLimits(settings, SECRET)

            async def start(_: int) -> None:
                response = await http.post("/api/v1/chat/sessions", json=body)
                assert response.status_code == 201, response.text

            session = (await http.post("/api/v1/chat/sessions", json=body)).json()
            headers = {"Authorization": f"Bearer {session['token']}"}
            path = f"/api/v1/chat/sessions/{session['session_id']}/messages"

            async def message(_: int) -> None:
                response = await http.post(path, json={"content": "hours?"}, headers=headers)
                assert response.status_code == 200, response.text

            await cpu_per_call(start, 30)
            await cpu_per_call(message, 30)
            for round_ in range(rounds):
                # Alternating which goes first, so drift (a busy neighbour, a growing database) falls on both.
                for state, limiter in (("on", real), ("off", off))[:: 1 if round_ % 2 else -1]:
                    app.state.limiter = limiter
                    results[f"start {state}"].append(await cpu_per_call(start, requests))
                    results[f"message {state}"].append(await cpu_per_call(message, requests))
            app.state.limiter = real
    return results


async def forget_keys(url: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    async for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        await client.delete(key)
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per round and path")
    parser.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds")
    parser.add_argument("--calls", type=int, default=5000, help="limiter-alone calls per path")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    print(machine_line())
    print(source_line())
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print()
    print(
        "| backend | path | limiter alone (ms CPU/request) | whole request, limiter on (ms) | off (ms) | on - off (ms) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for backend, url in (("memory", ""), ("redis", args.redis_url)):
        if url:
            await forget_keys(url)
        limiter = Limiter(
            load_settings(
                secret_key=SECRET,
                redis_url=url,
                **{f"rate_{n}": NEVER for n in ("session_starts", "messages", "failed_secrets", "assistant_starts")},
            ),
            SECRET,
        )
        alone_start, alone_message = await limiter_alone(limiter, args.calls)
        await limiter.close()
        with tempfile.TemporaryDirectory() as folder:
            whole = await whole_requests(url, args.requests, args.rounds, Path(folder))
        for path, alone in (("start", alone_start), ("message", alone_message)):
            on = statistics.median(whole[f"{path} on"])
            off = statistics.median(whole[f"{path} off"])
            print(f"| {backend} | {path} | {fmt(alone, 3)} | {fmt(on, 3)} | {fmt(off, 3)} | {fmt(on - off, 3)} |")
        if url:
            await forget_keys(url)
    print()
    print("medians of the rounds; process CPU of server and client together, so on - off is the limiter's part")


if __name__ == "__main__":
    # uvloop, as `portico serve` runs (uvicorn picks it up).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
