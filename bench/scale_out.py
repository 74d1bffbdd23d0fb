"""Several instances behind nginx: session starts and messages per second through nginx with 1, 2
and 3 `portico serve` instances (and with --workers 2), the CPU each request cost each kind of
process, and the PostgreSQL connections in use.

For each layout in --layouts (INSTANCESxWORKERS, default 1x1,2x1,3x1,1x2,3x2): a fresh PostgreSQL
database (--database, dropped and recreated, dropped again at the end), `portico db upgrade`,
`portico demo`, the instances (one PORTICO_SECRET_KEY, PORTICO_REDIS_URL for the rate-limit
counts, generous limits, PORTICO_TRUSTED_PROXIES=127.0.0.1), and nginx in front of them running
deploy/nginx-portico.conf (rendered as tests/test_scale_out.py renders it). Then two phases of
--duration seconds each after --warmup seconds, --clients concurrent clients through nginx:

  starts    POST /api/v1/chat/sessions on the demo's public assistant, one at a time per client
  messages  each client on a session of its own sends a message and reads the streamed reply
            (an openai-engine assistant on bench/fake_model.py: 20 tokens, no delay), again and again

CPU is read from /proc for each kind of process: the instances (with their worker processes),
nginx (master and worker), PostgreSQL's backends for the database, the fake model, this client,
and everything else the machine did ("other", other people's work on a shared machine).
Connections: the most seen at once in pg_stat_activity for the database, and the mean of those
active (running a statement), sampled every 100 ms.

Everything is started and stopped by its own PID. Needs nginx (apt-get install nginx), PostgreSQL
and Redis.

    .venv/bin/python bench/scale_out.py --database postgresql://postgres@127.0.0.1:5432/portico_scale
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchkit import (
    Backends,
    Served,
    create_openai_assistant,
    fmt,
    free_port,
    machine_cpu,
    machine_line,
    raise_fd_limit,
    recreate_database,
    script,
    seed_demo,
    send_message,
    serve_portico,
    server,
    settings,
    source_line,
    tree_cpu,
    wait_until_quiet,
)

# isort: split
# After benchkit, which puts the project's root on sys.path.
from tests.nginx import find_nginx, main_config, site_for

SECRET = "scale-out-benchmark-secret-0123456789abcdef"
MODEL = "fake:chunks=20,delay_ms=0"


@dataclass
class Phase:
    layout: str
    name: str
    done: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    most_connections: int = 0
    mean_active: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else float("nan")

    def per_request_ms(self, kind: str) -> float:
        return self.cpu[kind] / self.done * 1000 if self.done else float("nan")


@dataclass
class Layout:
    name: str
    instances: list[Served]
    nginx: Served
    model: Served
    token: str  # the demo owner's API token

    def cpu(self) -> dict[str, float]:
        return {
            "portico": sum(tree_cpu(s.pid) for s in self.instances),
            "nginx": tree_cpu(self.nginx.pid),
            "model": tree_cpu(self.model.pid),
            "client": time.process_time(),
        }


async def measure(layout: Layout, name: str, args: argparse.Namespace, work: Callable[[int], Awaitable[bool]]) -> Phase:
    phase = Phase(layout.name, name)
    end = time.monotonic() + args.warmup + args.duration
    counting = asyncio.Event()

    async def client(number: int) -> None:
        while time.monotonic() < end:
            ok = await work(number)
            if counting.is_set() and time.monotonic() < end:
                phase.done += ok
                phase.errors += not ok

    clients = [asyncio.create_task(client(n)) for n in range(args.clients)]
    await asyncio.sleep(args.warmup)
    async with Backends(args.database) as backends:
        before, busy0 = layout.cpu(), machine_cpu()
        counting.set()
        started = time.monotonic()
        await asyncio.sleep(max(end - time.monotonic(), 0))
        phase.seconds = time.monotonic() - started
        after, busy1 = layout.cpu(), machine_cpu()
        await asyncio.gather(*clients)
    phase.cpu = {kind: after[kind] - before[kind] for kind in after}
    phase.cpu["postgres"] = backends.cpu
    machine = (busy1[0] - busy0[0]) / (os.sysconf("SC_CLK_TCK"))
    phase.cpu["other"] = max(machine - sum(phase.cpu.values()), 0.0)
    phase.most_connections = backends.most
    phase.mean_active = backends.mean("active")
    return phase


@contextlib.contextmanager
def start_layout(name: str, args: argparse.Namespace, workdir: Path, model: Served) -> Iterator[Layout]:
    count, workers = (int(n) for n in name.lower().split("x"))
    folder = workdir / name
    folder.mkdir()
    asyncio.run(recreate_database(args.database))
    config = settings(folder, args.database, secret_key=SECRET)
    env = {
        "PORTICO_REDIS_URL": args.redis,
        "PORTICO_TRUSTED_PROXIES": "127.0.0.1",
        "PORTICO_DB_POOL_SIZE": str(args.pool),
    }
    demo = seed_demo(config, folder / "cli.log")
    with contextlib.ExitStack() as stack:
        instances = [
            stack.enter_context(
                serve_portico(f"portico{n}", config, folder / f"portico{n}.log", "--workers", str(workers), **env)
            )
            for n in range(count)
        ]
        port = free_port()
        (folder / "portico.conf").write_text(site_for([s.port for s in instances], port))
        (folder / "nginx.conf").write_text(main_config(folder))
        argv = [args.nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
        nginx = stack.enter_context(server("nginx", [*argv, "-g", "daemon off;"], port, folder / "nginx.out"))
        yield Layout(name, instances, nginx, model, demo.token)


async def run_phases(layout: Layout, args: argparse.Namespace) -> list[Phase]:
    front = layout.nginx.base_url
    upstream = layout.model.base_url + "/v1"
    public_id = await asyncio.to_thread(create_openai_assistant, front, layout.token, "scale", upstream, MODEL)
    limits = httpx.Limits(max_connections=args.clients * 2, max_keepalive_connections=args.clients * 2)
    async with httpx.AsyncClient(base_url=front, limits=limits, timeout=60) as http:
        start_body = {"public_id": public_id}

        async def one_start(_number: int) -> bool:
            return (await http.post("/api/v1/chat/sessions", json=start_body)).status_code == 201

        starts = await measure(layout, "starts", args, one_start)
        sessions = []
        for _ in range(args.clients):
            sessions.append((await http.post("/api/v1/chat/sessions", json=start_body)).json())
        body = json.dumps({"content": "How long does a session last?"}).encode()

        async def one_message(number: int) -> bool:
            session = sessions[number]
            url = f"{front}/api/v1/chat/sessions/{session['session_id']}/messages"
            return (await send_message(http, url, session["token"], body)).error is None

        messages = await measure(layout, "messages", args, one_message)
    return [starts, messages]


def table(phases: list[Phase]) -> str:
    kinds = ("portico", "nginx", "postgres", "model", "client", "other")
    lines = [
        "| layout | phase | per second | errors | "
        + " | ".join(f"{k} ms" for k in kinds)
        + " | PG connections (most / mean active) |",
        "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in kinds) + " | ---: |",
    ]
    for p in phases:
        cpu = " | ".join(fmt(p.per_request_ms(k), 2) for k in kinds)
        lines.append(
            f"| {p.layout} | {p.name} | {fmt(p.rate)} | {p.errors} | {cpu} | {p.most_connections} / {fmt(p.mean_active)} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/portico_scale")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--layouts", default="1x1,2x1,3x1,1x2,3x2", help="INSTANCESxWORKERS, comma-separated")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pool", type=int, default=14, help="PORTICO_DB_POOL_SIZE of each process")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--nginx", default=find_nginx())
    args = parser.parse_args()
    if not args.nginx:
        sys.exit("error: nginx is not installed (as root: apt-get install nginx)")
    raise_fd_limit()  # the servers inherit it
    print(f"machine: {machine_line()}\nsource: {source_line()}\ncommand: {' '.join(sys.argv)}")
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        workdir = Path(tmp)
        try:
            with script("fake-model", "fake_model.py", workdir / "fake-model.log") as model:
                for name in args.layouts.split(","):
                    load = wait_until_quiet(0.15, 30)
                    print(f"{name}: other work on the machine before start {load:.0%}", flush=True)
                    with start_layout(name, args, workdir, model) as layout:
                        phases += asyncio.run(run_phases(layout, args))
                    print(table([p for p in phases if p.layout == name]).splitlines()[-1], flush=True)
        finally:
            asyncio.run(recreate_database(args.database, drop_only=True))
    print()
    print(table(phases))
    print("\nCPU in ms per request (starts: per session started; messages: per reply of 20 tokens).")
    return 1 if any(p.errors for p in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
