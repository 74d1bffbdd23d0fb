"""What the benchmark scripts share: Portico's servers (started as the tests start them,
tests/servers.py), the other servers they run beside it, the demo's seed, a dedicated PostgreSQL
database, CPU and memory read from /proc, the machine's background load, the chat client, and the
lines that say what was measured where.

The scripts run as `python bench/NAME.py`, so this module is importable as `benchkit`. Every
process is started here and stopped by its own PID, never looked up by name. The Portico measured
is the one installed in the Python running the script: `/other/tree/.venv/bin/python
bench/chat.py` measures that tree's code with this tree's benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.servers import free_port, portico_env, portico_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Databases a benchmark must never drop and recreate.
PROTECTED_DATABASES = {"test", "postgres", "template0", "template1", "root"}
RATES = ("session_starts", "lookups", "messages", "failed_secrets", "assistant_starts")


# --- servers ----------------------------------------------------------------------------------


def portico_command() -> str:
    local = Path(sys.executable).parent / "portico"
    found = str(local) if local.exists() else shutil.which("portico")
    if not found:
        sys.exit("error: the `portico` command was not found; run this with the project's .venv/bin/python")
    return found


def settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Any:
    """Portico's settings for a benchmark: its own data folder (the secret key is generated there)
    and rate limits that never refuse the one load client, so the limiter still runs on every
    request (its cost is bench/abuse.py's question) but admits all."""
    from portico.config import load_settings

    unlimited = {f"rate_{name}": "1000000/second" for name in RATES}
    return load_settings(data_dir=data_dir, database_url=database_url, **unlimited, **overrides)


def raise_fd_limit(want: int = 65_536) -> int:
    """Raise this process's open-file limit (the servers it starts inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Served:
    name: str
    base_url: str
    pid: int

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


@contextlib.contextmanager
def server(
    name: str, argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Any other server (the bare apps, the fake model, nginx, `portico serve --workers N` or under
    cProfile), ready once it answers anything on `port`; stopped by its PID."""
    with log_path.open("ab") as log:  # a file, never a pipe nobody reads (a full pipe stalls the server)
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    served = Served(name, f"http://127.0.0.1:{port}", proc.pid)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(served.base_url + "/__bench_ready__", timeout=1.0)  # any answer, a 404 too
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(f"{name} did not start:\n{tail}") from None
                time.sleep(0.1)
        yield served
    finally:
        # uvicorn re-raises SIGTERM after its graceful shutdown, which would end a cProfile run
        # before it writes its file; SIGINT ends as KeyboardInterrupt, and cProfile still writes.
        proc.send_signal(signal.SIGINT if "cProfile" in argv else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def serve_portico(
    name: str, config: Any, log_path: Path, *args: str, profile: Path | None = None, **env: str
) -> Iterator[Served]:
    """`portico serve` started by tests/servers.py's launcher; with extra arguments (`--workers N`)
    or under cProfile (writing `profile`), by `server` with the same environment."""
    if not args and profile is None:
        with portico_server(config, log_path, **env) as url:
            port = url.rsplit(":", 1)[1].encode()
            for pid in children(os.getpid()):  # the launcher's child: the one serving on that port
                argv = _cmdline(pid)
                if b"--port" in argv[:-1] and argv[argv.index(b"--port") + 1] == port:
                    yield Served(name, url, pid)
                    return
            raise RuntimeError(f"no child process of this one serves {url}")
    port = free_port()
    argv = [portico_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    if profile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv]
    with server(name, argv, port, log_path, portico_env(config, **env)) as served:
        yield served


def script(name: str, file: str, log_path: Path, *args: str) -> contextlib.AbstractContextManager[Served]:
    """One of the bench/ servers (bare_app.py, bare_stream.py, fake_model.py) on a free port."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / file), "--host", "127.0.0.1", "--port", str(port), *args]
    return server(name, argv, port, log_path)


def run_cli(config: Any, args: list[str], log_path: Path, **env: str) -> str:
    """Run `portico ARGS` with the server's environment, log what it printed, return its output."""
    done = subprocess.run(
        [portico_command(), *args],
        env=portico_env(config, **env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    with log_path.open("ab") as log:
        log.write(f"$ portico {' '.join(args)}\n".encode() + done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"`portico {' '.join(args)}` failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return done.stdout.decode()


@dataclass
class Demo:
    public_id: str  # the demo assistant's
    email: str
    password: str
    token: str  # the demo owner's API token


def seed_demo(config: Any, log_path: Path) -> Demo:
    """`portico db upgrade` and `portico demo`: an owner, an API token, a published live assistant."""
    run_cli(config, ["db", "upgrade"], log_path)
    printed = run_cli(config, ["demo"], log_path)
    found = re.search(r"Chat with the demo assistant: \S+/c/(\S+)", printed)
    if not found:
        raise RuntimeError(f"`portico demo` printed no demo assistant:\n{printed}")
    values = demo_credentials(config.data_dir)
    return Demo(found.group(1), values["email"], values["password"], values["api_token"])


def demo_credentials(data_dir: Path) -> dict[str, str]:
    text = (data_dir / "demo-credentials.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def refuse_protected(url: str) -> str:
    """The database's name, unless it is one a benchmark must not drop."""
    name = urlsplit(url).path.lstrip("/")
    if not name or name in PROTECTED_DATABASES:
        raise SystemExit(f"error: refusing to drop and recreate the database '{name}'; give a dedicated one")
    return name


async def recreate_database(url: str, *, drop_only: bool = False) -> None:
    """Drop the benchmark's own PostgreSQL database and (unless drop_only) create it empty."""
    import asyncpg

    name = refuse_protected(url)
    parts = urlsplit(url)
    conn = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def fetch_rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of one query on a SQLite file (read-only) or a PostgreSQL database."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
            return conn.execute(query).fetchall()
    import asyncpg

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


# --- the chat client ----------------------------------------------------------------------------

# Shared by every client: plain http, but httpx builds one per client otherwise.
SSL_CONTEXT = ssl.create_default_context()


def new_client(connections: int = 1, timeout: float = 60.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout), verify=SSL_CONTEXT)


def create_openai_assistant(
    base_url: str, token: str, label: str, upstream: str, model: str, timeout: float = 30.0
) -> str:
    """An openai-engine assistant with the demo FAQ as knowledge, published and live; its public id."""
    body = {
        "name": f"bench {label}",
        "instructions": "Answer questions about Portico from the FAQ.",
        "knowledge": (ROOT / "src" / "portico" / "demo" / "knowledge.md").read_text(encoding="utf-8"),
        "engine": {"type": "openai", "base_url": upstream, "model": model, "timeout": timeout},
    }
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        created = api.post("/api/v1/assistants", json=body)
        if created.status_code != 201:
            raise RuntimeError(f"creating an assistant answered {created.status_code}: {created.text[:300]}")
        assistant = created.json()
        for method, path, payload in (
            ("POST", f"/api/v1/assistants/{assistant['id']}/publish", None),
            ("PUT", f"/api/v1/assistants/{assistant['id']}/status", {"status": "live"}),
        ):
            answer = api.request(method, path, json=payload)
            if answer.status_code >= 300:
                raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
    return str(assistant["public_id"])


@dataclass
class Reply:
    ttft: float | None = None  # seconds to the first token event
    total: float = 0.0
    tokens: int = 0
    text: str = ""
    error: str | None = None


async def send_message(client: httpx.AsyncClient, url: str, token: str, body: bytes, keep_text: bool = False) -> Reply:
    """One guest message, `Accept: text/event-stream`, read to the stream's end."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "Content-Type": "application/json"}
    reply = Reply()
    parts: list[str] = []
    done = False
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", url, content=body, headers=headers) as answer:
            if answer.status_code != 200:
                await answer.aread()
                reply.error = f"{answer.status_code}: {answer.text[:200]}"
            else:
                event = ""
                async for line in answer.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "token":
                            if reply.ttft is None:
                                reply.ttft = time.perf_counter() - t0
                            reply.tokens += 1
                            if keep_text:
                                parts.append(json.loads(line[5:])["text"])
                        elif event == "done":
                            done = True
                        elif event == "error":
                            reply.error = f"error event: {line[5:].strip()[:200]}"
    except httpx.HTTPError as exc:
        reply.error = f"{type(exc).__name__}: {exc}"
    reply.total = time.perf_counter() - t0
    if reply.error is None and not done:
        reply.error = "stream ended without done"
    if reply.error is None and reply.tokens == 0:
        reply.error = "reply without tokens"
    reply.text = "".join(parts)
    return reply


# --- CPU and memory, from /proc -------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(parent: int) -> list[int]:
    """The PIDs whose parent is `parent`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants alive now (uvicorn's workers, nginx's)."""
    family, new = {root}, [root]
    while new:
        new = [child for pid in new for child in children(pid)]
        family.update(new)
    return sum(process_cpu(pid) for pid in family)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/PID/status (empty once the process is gone)."""
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


def least_disturbed(
    measure: Callable[[], Any], label: str, *, quiet: float, patience: float, max_other: float, retries: int
) -> Any:
    """A level measured once other work on the machine is under `quiet` (waiting at most `patience`
    seconds), and again, up to `retries` times, while other work used more than `max_other` cores
    during it: the least disturbed attempt, marked `disturbed` if it still was. `measure` returns a
    phase with `other_cpu`, `background` and `disturbed`, and prints its own line."""
    best = None
    for attempt in range(1, retries + 2):
        load = wait_until_quiet(quiet, patience)
        if load > quiet:
            print(f"{label} warning: {load:.0%} of the machine is busy with other work", flush=True)
        phase = measure()
        phase.background = load
        if best is None or phase.other_cpu < best.other_cpu:
            best = phase
        if phase.other_cpu <= max_other or attempt > retries:
            break
        print(
            f"{label}     other work used {phase.other_cpu:.2f} cores; measuring again ({attempt}/{retries})",
            flush=True,
        )
    best.disturbed = best.other_cpu > max_other
    return best


class Backends:
    """A PostgreSQL database's backends while the block runs, sampled every 100 ms from
    pg_stat_activity on a connection of its own (to the `postgres` database): their CPU from /proc
    (a backend started since counts from 0; one that both started and ended between two samples is
    missed), the most at once, the mean in each state, and the connections opened."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
        self.name = parts.path.lstrip("/")
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.samples = self.most = self.opened = 0
        self.states: Counter[str] = Counter()  # summed over samples; "lock" = waiting on a lock
        self.cpu = 0.0
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Backends:
        import asyncpg

        self.conn = await asyncpg.connect(self.admin_url, timeout=10)
        self.opened = -await self._sessions()
        for row in await self._activity():
            self.cpu_first[row["pid"]] = self.cpu_last[row["pid"]] = process_cpu(row["pid"])
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        await self._task
        self._read(await self._activity(), sample=False)
        self.cpu = sum(max(self.cpu_last[pid] - self.cpu_first[pid], 0.0) for pid in self.cpu_first)
        self.opened += await self._sessions()
        await self.conn.close()

    def mean(self, state: str) -> float:
        return self.states[state] / max(self.samples, 1)

    async def _sessions(self) -> int:
        """Connections ever opened to the database (pg_stat_database.sessions, PostgreSQL 14+)."""
        value = await self.conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", self.name)
        return int(value or 0)

    async def _activity(self) -> list[Any]:
        return await self.conn.fetch(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.name,
        )

    def _read(self, rows: list[Any], *, sample: bool = True) -> None:
        for row in rows:
            self.cpu_first.setdefault(row["pid"], 0.0)
            self.cpu_last[row["pid"]] = max(process_cpu(row["pid"]), self.cpu_last.get(row["pid"], 0.0))
        if sample:
            self.samples += 1
            self.most = max(self.most, len(rows))
            self.states.update(row["state"] for row in rows)
            self.states["lock"] += sum(1 for row in rows if row["wait_event_type"] == "Lock")

    async def _sample(self) -> None:
        while not self._stop.is_set():
            self._read(await self._activity())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)


# --- what was measured where, and figures ------------------------------------------------------


def machine_line() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model or platform.processor()}), Python {platform.python_version()}, {platform.platform()}"


def source_line() -> str:
    """The commit of the Portico measured (the tree this Python imports it from), and whether its
    src/ had uncommitted changes."""
    import importlib.util

    spec = importlib.util.find_spec("portico")
    tree = Path(spec.origin).resolve().parents[2] if spec and spec.origin else ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--", "src"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{tree} (no git)"
    return f"{commit or 'unknown'}{' with uncommitted changes in src/' if dirty else ''} ({tree})"


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # nan -> "-"


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (nan for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct * len(ordered) / 100) - 1))]
