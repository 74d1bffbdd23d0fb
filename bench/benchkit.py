"""What the benchmark scripts share: servers started and stopped by their own PID, CPU and memory
read from /proc, the machine's background load, a dedicated PostgreSQL database, and the lines that
say what was measured where.

The scripts run as `python bench/NAME.py`, so this module is importable as `benchkit`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Databases a benchmark must never drop and recreate.
PROTECTED_DATABASES = {"test", "postgres", "template0", "template1", "root"}


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def portico_command() -> str:
    local = Path(sys.executable).parent / "portico"
    found = str(local) if local.exists() else shutil.which("portico")
    if not found:
        sys.exit("error: the `portico` command was not found; run this with the project's .venv/bin/python")
    return found


# One load client sends everything from one address: rate limits that never refuse it, so the
# limiter still runs on every request (its cost is measured by bench/abuse.py) but admits all.
UNLIMITED = {
    f"PORTICO_RATE_{name}": "1000000/second"
    for name in ("SESSION_STARTS", "LOOKUPS", "MESSAGES", "FAILED_SECRETS", "ASSISTANT_STARTS")
}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any PORTICO_ setting, plus rate limits that admit
    the load client, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(UNLIMITED)
    env.update(extra)
    return env


def raise_fd_limit(want: int = 65_536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """One server subprocess, started and stopped by its own PID (never looked up by name)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log_path: Path, *, many_sockets: bool = False
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = log_path
        self.many_sockets = many_sockets  # thousands of sockets: raise the file limit
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        # Logs go to a file, never to a pipe nobody reads (a full pipe would stall the server).
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_fd_limit if self.many_sockets else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(self.base_url + "/__bench_ready__", timeout=1.0)  # any answer, a 404 too
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # uvicorn re-raises SIGTERM after its graceful shutdown, which would end a cProfile run
        # before it writes its file; SIGINT ends as KeyboardInterrupt, and cProfile still writes.
        self.proc.send_signal(signal.SIGINT if "cProfile" in self.argv else signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_cli(args: list[str], env: dict[str, str], log_path: Path) -> str:
    """Run `portico ARGS`, log what it printed, and return its standard output."""
    done = subprocess.run(
        [portico_command(), *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
    )
    with log_path.open("ab") as log:
        log.write(f"$ portico {' '.join(args)}\n".encode() + done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"`portico {' '.join(args)}` failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return done.stdout.decode()


async def recreate_database(url: str, *, drop_only: bool = False, protected: set[str] = PROTECTED_DATABASES) -> None:
    """Drop the benchmark's own PostgreSQL database and (unless drop_only) create it empty."""
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in protected:
        raise SystemExit(f"error: refusing to drop and recreate the database '{name}'; give a dedicated one")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# --- CPU and memory, from /proc -------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/PID/status."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is already counted in user
    return total - idle, total


def background_load(seconds: float = 0.5) -> float:
    """Share of the machine busy while this script does nothing: other work that skews figures."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_until_quiet(limit: float, patience: float) -> float:
    """Wait (at most `patience` seconds) for other work on the machine to go below `limit`."""
    deadline = time.monotonic() + patience
    load = background_load()
    while load > limit and time.monotonic() < deadline:
        load = background_load()
    return load


# --- what was measured where ----------------------------------------------------------------


def machine_line() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model or platform.processor()}), Python {platform.python_version()}, {platform.platform()}"


def source_line() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{commit or 'unknown'}{' with uncommitted changes in src/' if dirty else ''}"


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # nan -> "-"


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (nan for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]
