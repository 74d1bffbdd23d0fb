"""Session starts through the HTTP API: admissions per second and p50/p99 latency.

For each target this starts a real server as a subprocess on a free loopback port, waits until
it answers, seeds it, and then drives `POST /api/v1/chat/sessions` with a private link
(unlimited) from N concurrent clients, for each N in --clients:

  sqlite      `portico serve` on a fresh SQLite file (it migrates itself at start-up)
  postgresql  `portico serve` on a fresh database (default portico_bench, dropped and
              recreated; `portico db upgrade` first; dropped again at the end)
  bare        bench/bare_app.py: one FastAPI `POST /start` that parses the same body and
              answers 201 with a response of the same shape, no database; same uvicorn settings

Seeding: `portico demo` (an owner, an API token, a published live assistant), then through the
API with that token: `GET /api/v1/assistants` and `POST /api/v1/assistants/{id}/links` with
`{"links": [{"name": "bench", "max_sessions": 0}]}`; the key is the URL's part after `#k=`.
Every client uses that one link (--links N spreads them over N links instead).

The load client is this process: N worker coroutines, each with its own httpx.AsyncClient
(a pool of one keep-alive connection; --shared-pool for one pool of N), each sending one
request at a time. Each level runs a warm-up (--warmup seconds, not counted) and then a measured
window (--duration seconds, or --max-requests requests, whichever comes first). Every answer
must be 201; anything else, or a transport error, is counted in `errors` and makes the exit
status 1. After the levels the links' `sessions_used` is read back through the API and
compared with the number of 201 answers (each admission counted exactly once).

The machine is shared, so CPU is accounted for: the server's (all its threads, from
/proc/PID/stat), the client's, PostgreSQL's backends for the benchmark database, and "other"
(everything else the machine did). A level is measured again (--retries) when other work used
more than --max-other cores; the least disturbed attempt is kept, and marked in the table if it
still was.

Servers are stopped at the end by the PID this script started them with (SIGTERM, then SIGKILL);
nothing is looked up by process name. `portico serve` is started as the tests start it
(tests/servers.py).

    .venv/bin/python bench/session_start.py
    .venv/bin/python bench/session_start.py --targets postgresql,bare --clients 16 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from benchkit import (
    Backends,
    Served,
    fmt,
    least_disturbed,
    machine_cpu,
    machine_line,
    new_client,
    percentile,
    process_cpu,
    recreate_database,
    refuse_protected,
    script,
    seed_demo,
    serve_portico,
    settings,
    source_line,
)

TARGETS = ("sqlite", "postgresql", "bare")
QUIET = 0.10  # share of the machine other work may use before a level starts
SESSION_PATH = "/api/v1/chat/sessions"
BARE_PATH = "/start"


# --- measurements -------------------------------------------------------------------------


@dataclass
class Phase:
    target: str
    clients: int
    requests: int = 0  # answers received in the window (any status)
    ok: int = 0  # 201 answers
    errors: int = 0  # non-201 answers and transport errors
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    db_cpu_s: float | None = None  # PostgreSQL backends serving the benchmark database
    machine_busy: float = 0.0  # share of all cores busy during the window, 0..1
    background: float = 0.0  # share of all cores busy just before the level, with the load idle
    lock_waiters: float | None = None  # PostgreSQL: mean backends waiting on a lock (sampled)
    in_transaction_idle: float | None = None  # PostgreSQL: mean backends idle in transaction
    db_connections: int | None = None  # PostgreSQL: connections the server opened in the window
    disturbed: bool = False  # other work on the machine used more CPU than --max-other

    @property
    def other_cpu(self) -> float:
        """Busy CPU (in cores) not spent by the server, the client or the benchmark's backends."""
        ours = self.server_cpu_s + self.client_cpu_s + (self.db_cpu_s or 0.0)
        return max(self.machine_busy * (os.cpu_count() or 1) - ours / self.elapsed, 0.0) if self.elapsed else 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        del data["latencies_ms"]
        data.update(
            rate=round(self.rate, 1),
            p50_ms=round(self.percentile(50), 2),
            p99_ms=round(self.percentile(99), 2),
            mean_ms=round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
            server_cpu_ms_per_req=round(1000 * self.server_cpu_s / self.ok, 3) if self.ok else None,
            client_cpu_ms_per_req=round(1000 * self.client_cpu_s / self.ok, 3) if self.ok else None,
            db_cpu_ms_per_req=round(1000 * self.db_cpu_s / self.ok, 3)
            if self.ok and self.db_cpu_s is not None
            else None,
            other_cpu_cores=round(self.other_cpu, 2),
        )
        return data


# --- servers --------------------------------------------------------------------------------


@dataclass
class Prepared:
    server: Served
    url: str  # where the load goes
    bodies: list[bytes]  # JSON bodies; worker i sends bodies[i % len(bodies)] (one per link)
    token: str | None = None  # the owner's API token (Portico targets)
    assistant_id: int | None = None
    link_ids: list[int] = field(default_factory=list)
    database_url: str | None = None  # PostgreSQL only: whose backends' CPU to count


@contextlib.contextmanager
def prepare(target: str, workdir: Path, postgres_url: str, links: int = 1) -> Iterator[Prepared]:
    """The target's server, seeded: the demo's API token, its assistant's id, and `links` new
    unlimited private links' keys."""
    log_path = workdir / f"{target}.log"
    if target == "bare":
        with script(target, "bare_app.py", log_path) as bare:
            yield Prepared(bare, bare.base_url + BARE_PATH, [json.dumps({"key": "ptk_" + "b" * 43}).encode()])
        return
    database_url = postgres_url if target == "postgresql" else ""
    if database_url:
        asyncio.run(recreate_database(database_url))
    config = settings(workdir / target, database_url)
    demo = seed_demo(config, log_path)
    with serve_portico(target, config, log_path) as portico:
        headers = {"Authorization": f"Bearer {demo.token}"}
        with httpx.Client(base_url=portico.base_url, headers=headers, timeout=30) as api:
            listed = api.get("/api/v1/assistants")
            listed.raise_for_status()
            assistant_id = listed.json()["items"][0]["id"]
            names = ["bench"] if links == 1 else [f"bench {n}" for n in range(1, links + 1)]
            created = api.post(
                f"/api/v1/assistants/{assistant_id}/links",
                json={"links": [{"name": name, "max_sessions": 0} for name in names]},
            )
            if created.status_code != 201:
                raise RuntimeError(f"creating the links answered {created.status_code}: {created.text[:300]}")
        items = created.json()["items"]
        bodies = [json.dumps({"key": link["url"].split("#k=", 1)[1]}).encode() for link in items]
        ids = [link["id"] for link in items]
        yield Prepared(
            portico, portico.base_url + SESSION_PATH, bodies, demo.token, assistant_id, ids, database_url or None
        )


def link_sessions_used(prepared: Prepared) -> int | None:
    """The uses the server counted on the benchmark's links, read back through the API."""
    if prepared.token is None:
        return None
    headers = {"Authorization": f"Bearer {prepared.token}"}
    with httpx.Client(base_url=prepared.server.base_url, headers=headers, timeout=30) as api:
        answer = api.get(f"/api/v1/assistants/{prepared.assistant_id}/links")
        answer.raise_for_status()
    return sum(item["sessions_used"] for item in answer.json()["items"] if item["id"] in prepared.link_ids)


# --- load -----------------------------------------------------------------------------------


async def drive(
    pools: list[httpx.AsyncClient], prepared: Prepared, phase: Phase, seconds: float, max_requests: int
) -> None:
    """`phase.clients` workers, each sending one request at a time until the time or count runs out.

    Worker i sends through pools[i % len(pools)] the body of link i % (number of links).
    """
    headers = {"content-type": "application/json"}
    started = 0
    deadline = time.perf_counter() + seconds
    consecutive_failures = 0

    async def worker(client: httpx.AsyncClient, body: bytes) -> None:
        nonlocal started, consecutive_failures
        while time.perf_counter() < deadline and started < max_requests and consecutive_failures < 100:
            started += 1
            t0 = time.perf_counter()
            try:
                answer = await client.post(prepared.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                phase.errors += 1
                consecutive_failures += 1
                if len(phase.error_samples) < 5:
                    phase.error_samples.append(f"{type(exc).__name__}: {exc}")
                continue
            took = time.perf_counter() - t0
            phase.requests += 1
            if answer.status_code == 201:
                consecutive_failures = 0
                phase.ok += 1
                phase.latencies_ms.append(took * 1000)
            else:
                phase.errors += 1
                consecutive_failures += 1
                if len(phase.error_samples) < 5:
                    phase.error_samples.append(f"{answer.status_code}: {answer.text[:200]}")

    t0 = time.perf_counter()
    bodies = prepared.bodies
    await asyncio.gather(*(worker(pools[i % len(pools)], bodies[i % len(bodies)]) for i in range(phase.clients)))
    phase.elapsed = time.perf_counter() - t0


def open_pools(clients: int, shared: bool) -> list[httpx.AsyncClient]:
    """N keep-alive connections: one AsyncClient per worker (default), or one shared pool of N.

    httpcore's pool does per-request bookkeeping over all its connections and waiters, so one
    shared pool of 64 costs this process ~10 ms of CPU per request on a 2-core machine and the
    benchmark would measure the client (the bare endpoint drops to ~100/s); a pool per worker
    keeps it near 1 ms. --shared-pool reproduces the single-pool client.
    """
    if shared:
        return [new_client(clients, timeout=30.0)]
    return [new_client(timeout=30.0) for _ in range(clients)]


async def run_level(
    prepared: Prepared, clients: int, warmup: float, duration: float, max_requests: int, shared_pool: bool = False
) -> tuple[Phase, int]:
    """Warm up, then measure; returns the measured phase and the number of 201s in both."""
    pools = open_pools(clients, shared_pool)
    async with contextlib.AsyncExitStack() as stack:
        for pool in pools:
            await stack.enter_async_context(pool)
        client = pools  # the workers share nothing but the event loop
        warm = Phase(prepared.server.name, clients)
        if warmup > 0:
            await drive(client, prepared, warm, warmup, max_requests)
        phase = Phase(prepared.server.name, clients)
        database = Backends(prepared.database_url) if prepared.database_url else contextlib.nullcontext()
        async with database as backends:
            server0, client0, machine0 = process_cpu(prepared.server.pid), time.process_time(), machine_cpu()
            await drive(client, prepared, phase, duration, max_requests)
            server1, client1, machine1 = process_cpu(prepared.server.pid), time.process_time(), machine_cpu()
    if backends is not None:
        phase.db_cpu_s = backends.cpu
        phase.db_connections = backends.opened  # the watcher's own connection is to another database
        phase.lock_waiters = backends.mean("lock")
        phase.in_transaction_idle = backends.mean("idle in transaction")
    phase.server_cpu_s = server1 - server0
    phase.client_cpu_s = client1 - client0
    phase.machine_busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return phase, warm.ok + phase.ok


# --- report ---------------------------------------------------------------------------------


def ratio_to_bare(phase: Phase, phases: list[Phase]) -> str:
    bare = next((p.rate for p in phases if p.target == "bare" and p.clients == phase.clients), 0.0)
    return f"{phase.rate / bare:.2f}" if bare else "-"


def table(phases: list[Phase]) -> str:
    header = "| target | clients | requests | errors | admissions/s | p50 ms | p99 ms | ratio to bare |"
    lines = [header, "|" + "---:|" * (header.count("|") - 1)]
    lines[1] = "|---" + lines[1][5:]
    for p in phases:
        mark = " (disturbed)" if p.disturbed else ""
        lines.append(
            f"| {p.target}{mark} | {p.clients} | {p.requests:,} | {p.errors} | {fmt(p.rate)} | {fmt(p.percentile(50), 2)} "
            f"| {fmt(p.percentile(99), 2)} | {ratio_to_bare(p, phases)} |"
        )
    return "\n".join(lines)


def cpu_table(phases: list[Phase]) -> str:
    """Where the time went: CPU per admission, CPU in cores, PostgreSQL's backends' states."""
    header = (
        "| target | clients | server CPU ms/req | PostgreSQL CPU ms/req | client CPU ms/req "
        "| server cores | client cores | other cores | PG backends waiting on a lock | PG backends idle in transaction "
        "| PG connections opened |"
    )
    lines = [header, "|---" + "|---:" * (header.count("|") - 2) + "|"]
    for p in phases:

        def per(seconds: float | None, ok: int = p.ok) -> str:
            return f"{1000 * seconds / ok:.2f}" if ok and seconds is not None else "-"

        def opt(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lines.append(
            f"| {p.target} | {p.clients} | {per(p.server_cpu_s)} | {per(p.db_cpu_s)} | {per(p.client_cpu_s)} "
            f"| {p.server_cpu_s / p.elapsed:.2f} | {p.client_cpu_s / p.elapsed:.2f} | {p.other_cpu:.2f} "
            f"| {opt(p.lock_waiters)} | {opt(p.in_transaction_idle)} "
            f"| {'-' if p.db_connections is None else f'{p.db_connections:,}'} |"
        )
    return "\n".join(lines)


def goal_line(phases: list[Phase]) -> str | None:
    pg = next((p for p in phases if p.target == "postgresql" and p.clients == 16), None)
    bare = next((p for p in phases if p.target == "bare" and p.clients == 16), None)
    if pg is None or bare is None or not bare.rate:
        return None
    ratio = pg.rate / bare.rate
    verdict = "met" if ratio >= 0.40 else "NOT met"
    return (
        f"Goal: PostgreSQL at 16 clients >= 40% of the bare endpoint's throughput: "
        f"{pg.rate:,.0f} / {bare.rate:,.0f} = {ratio:.0%} -> {verdict}"
    )


# --- main -----------------------------------------------------------------------------------


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default="sqlite,postgresql,bare", help="comma-separated: sqlite, postgresql, bare")
    parser.add_argument("--clients", default="1,16,64", help="comma-separated concurrency levels (default 1,16,64)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per level (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level, not counted (default 1)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on requests per phase (default 100000)")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/portico_bench",
        help="database for the postgresql target; it is DROPPED and recreated (default portico_bench)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each level, wait up to this many seconds for other work on the machine to stop (default 120)",
    )
    parser.add_argument(
        "--links",
        type=int,
        default=1,
        help="private links to spread the clients over (default 1: every client uses the same link)",
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="a level is measured again when other work used more CPU cores than this during it (default 0.25)",
    )
    parser.add_argument("--retries", type=int, default=3, help="how many times to measure a disturbed level again")
    parser.add_argument(
        "--shared-pool",
        action="store_true",
        help="one httpx.AsyncClient pool of N connections for all workers instead of one per worker (slower client)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, SQLite file) and the database")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()

    targets = parse_list(args.targets)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        parser.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    try:
        levels = [int(c) for c in parse_list(args.clients)]
    except ValueError:
        parser.error("--clients takes whole numbers, e.g. 1,16,64")
    if not levels or min(levels) < 1:
        parser.error("--clients takes whole numbers >= 1")
    if args.links < 1:
        parser.error("--links must be >= 1")
    if args.duration <= 0 or args.warmup < 0 or args.max_requests < 1:
        parser.error("--duration must be > 0, --warmup >= 0, --max-requests >= 1")
    if "postgresql" in targets:
        refuse_protected(args.postgres_url)

    workdir = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    print(f"machine: {machine_line()}")
    source = source_line()
    print(f"source: {source}")
    print(f"work folder: {workdir}  (server logs: <target>.log)")
    print(
        f"per level: {args.warmup:g} s warm-up + {args.duration:g} s measured (at most {args.max_requests:,} requests);"
        f" clients {levels}; targets {targets}; {args.links} private link(s), unlimited",
        flush=True,
    )
    phases: list[Phase] = []
    checks: list[str] = []
    status = 0
    all_errors = 0  # in every measured window, those measured again included
    try:
        for target in targets:
            print(f"\n[{target}] starting", flush=True)
            with prepare(target, workdir, args.postgres_url, args.links) as prepared:
                print(
                    f"[{target}] pid {prepared.server.pid} on {prepared.server.base_url}, POST {urlsplit(prepared.url).path}",
                    flush=True,
                )
                admitted = 0
                for clients in levels:

                    def measure(clients: int = clients, target: str = target) -> Phase:
                        nonlocal admitted, all_errors
                        phase, ok = asyncio.run(
                            run_level(
                                prepared, clients, args.warmup, args.duration, args.max_requests, args.shared_pool
                            )
                        )
                        admitted += ok
                        all_errors += phase.errors
                        print(
                            f"[{target}] {clients:>3} clients: {phase.requests:>7,} requests, {phase.errors} errors, "
                            f"{phase.rate:8,.1f}/s, p50 {fmt(phase.percentile(50), 2)} ms, "
                            f"p99 {fmt(phase.percentile(99), 2)} ms; CPU cores: server "
                            f"{phase.server_cpu_s / phase.elapsed:.2f}, client {phase.client_cpu_s / phase.elapsed:.2f}, "
                            f"other {phase.other_cpu:.2f}",
                            flush=True,
                        )
                        for sample in phase.error_samples:
                            print(f"[{target}]     error: {sample}", flush=True)
                        return phase

                    phases.append(
                        least_disturbed(
                            measure,
                            f"[{target}]",
                            quiet=QUIET,
                            patience=args.quiet_wait,
                            max_other=args.max_other,
                            retries=args.retries,
                        )
                    )
                used = link_sessions_used(prepared)
                if used is not None:
                    same = used == admitted
                    checks.append(
                        f"{target}: sessions_used on the link(s) {used:,}, 201 answers {admitted:,} -> "
                        f"{'ok' if same else 'MISMATCH'}"
                    )
                    if not same:
                        status = 1
    except Exception as exc:  # noqa: BLE001 - report and stop the servers
        print(f"\nerror: {exc}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        if "postgresql" in targets and not args.keep:
            try:
                asyncio.run(recreate_database(args.postgres_url, drop_only=True))
            except Exception as exc:  # noqa: BLE001
                print(f"warning: could not drop the benchmark database: {exc}", file=sys.stderr)
        if not args.keep and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif status != 0:
            print(f"work folder kept for inspection: {workdir}", file=sys.stderr)

    if phases:
        print("\n" + table(phases))
        print(
            f"\nWhere the time went (the machine has {os.cpu_count()} cores; 'other' is CPU used by anything "
            "else, e.g. other jobs on the machine):\n" + cpu_table(phases)
        )
        for line in checks:
            print(line)
        if all_errors:
            status = status or 1
            print(f"errors: {all_errors} non-201 answers or transport errors")
        else:
            print("errors: none (every answer was 201)")
        if goal := goal_line(phases):
            print(goal)
        if (now := source_line()) != source:
            print(f"note: the source changed during the run: {source} at the start, {now} at the end")
    if args.json and phases:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine_line(),
                    "source": source,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "phases": [p.summary() for p in phases],
                    "checks": checks,
                    "goal": goal_line(phases),
                },
                indent=2,
            )
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
