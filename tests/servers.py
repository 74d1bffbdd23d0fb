"""Run a real `portico serve` process on a free loopback port for tests that need one."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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
    with serve(settings, log_path, free_port(), extra_env) as (url, _process):
        yield url


@contextmanager
def serve(settings, log_path: Path, port: int, extra_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`portico serve` on this port: yields its base URL and its process, stops it afterwards."""
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
                    time.sleep(0.05)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class LogSince:
    """A server's log from one moment on (a test's start), read as a Path is: `read_text()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def read_text(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")

    def __str__(self) -> str:
        return str(self.path)


@dataclass
class Served:
    """One test's view of a shared server: its URL and its log since the test began."""

    url: str
    log: LogSince


class SharedServers:
    """The worker's running `portico serve` processes, one per database and set of settings, kept
    until the end of the run (tests/conftest.py's `shared_server`). A server found dead is started
    again; a test that kills, restarts or reconfigures a server starts its own (`portico_server`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stack = ExitStack()
        self.running: dict[str, tuple[str, subprocess.Popen, Path]] = {}

    def get(self, settings, *, own_base_url: bool = False, **extra_env: str) -> Served:  # type: ignore[no-untyped-def]
        key = json.dumps([portico_env(settings, **extra_env).get(k) for k in _KEYED] + [own_base_url, extra_env])
        found = self.running.get(key)
        if found is None or found[1].poll() is not None:
            folder = self.folder / f"server-{len(self.running)}-{time.monotonic_ns()}"
            folder.mkdir(parents=True)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            update = {"data_dir": folder, **({"base_url": url} if own_base_url else {})}
            started = self.stack.enter_context(
                serve(settings.model_copy(update=update), folder / "server.log", port, extra_env)
            )
            found = self.running[key] = (started[0], started[1], folder / "server.log")
        return Served(url=found[0], log=LogSince(found[2]))

    def close(self) -> None:
        self.stack.close()


# What makes two tests' servers different (besides `extra_env`): the data folder is the server's own.
_KEYED = ["PORTICO_DATABASE_URL", "PORTICO_SECRET_KEY", "PORTICO_BASE_URL"] + [
    f"PORTICO_{n.upper()}" for n in RATE_SETTINGS
]
