"""Run a real `portico serve` process on a free loopback port for tests that need one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PORTICO = str(Path(sys.executable).parent / "portico")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def portico_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": settings.resolved_database_url,
            "PORTICO_DATA_DIR": str(settings.data_dir),
            "PORTICO_SECRET_KEY": settings.secret_key,
            "PORTICO_BASE_URL": settings.base_url,
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
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(f"{url}/openapi.json", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"portico serve did not start:\n{log_path.read_text()}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)
