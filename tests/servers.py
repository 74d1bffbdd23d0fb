"""Run a real `portico serve` process on a free loopback port for tests that need one."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PORTICO = str(Path(sys.executable).parent / "portico")


# Each pytest-xdist worker draws ports from its own block, below the kernel's ephemeral range
# (32768 and up on Linux), so between the check here and the server's own bind neither another
# worker nor an outgoing connection (asyncpg, httpx) can take the port.
PORT_BLOCK = 400
FIRST_PORT = 20_000


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0


def free_port() -> int:
    first = FIRST_PORT + (_worker_index() % 30) * PORT_BLOCK
    # Random within the block: another engineer's run on the same machine uses the same blocks.
    for port in random.sample(range(first, first + PORT_BLOCK), PORT_BLOCK):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {first}-{first + PORT_BLOCK - 1}")


RATE_SETTINGS = ("rate_session_starts", "rate_lookups", "rate_messages", "rate_failed_secrets", "rate_assistant_starts")


def portico_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": settings.resolved_database_url,
            "PORTICO_DATA_DIR": str(settings.data_dir),
            "PORTICO_SECRET_KEY": settings.secret_key,
            "PORTICO_BASE_URL": settings.base_url,
            # The test's own rate limits (generous, unless a test set tight ones).
            **{f"PORTICO_{name.upper()}": getattr(settings, name) for name in RATE_SETTINGS},
            **extra,
        }
    )
    return env


@contextmanager
def portico_server(settings, log_path: Path, **extra_env: str) -> Iterator[str]:
    """Yields the server's base URL; stops the process (by its own PID) afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PORTICO, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=portico_env(settings, **extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            # Generous: with pytest-xdist workers (and other work) on 2 cores, importing the app can
            # take tens of seconds; a passing run never waits this long.
            deadline = time.monotonic() + 90
            while True:
                try:
                    httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"portico serve did not start:\n{log_path.read_text()}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
