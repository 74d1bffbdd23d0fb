"""Chat streaming through the HTTP API: messages per second, time to first token, open streams.

Part 1, replies. For each concurrency level in --clients (default 1, 16, 64), each target is
driven by N workers; each worker owns its own chat session (started before the clock starts)
and sends messages back to back, `Accept: text/event-stream`, reading the whole SSE stream:

  portico-builtin  `portico serve`, the demo assistant (builtin engine, the demo FAQ)
  bare-builtin     bench/bare_stream.py `POST /builtin`: the same reply text, split into the
                   same pieces, as sse-starlette events, with nothing else
  portico-openai   `portico serve`, an assistant with the openai engine (and the demo FAQ as
                   knowledge, so retrieval runs) against bench/fake_model.py
  bare-proxy       bench/bare_stream.py `POST /proxy`: an httpx streaming proxy to the same
                   fake model, re-emitting each chunk as a token event

The fake model sends --chunks chunks (default 20), --chunk-ms apart (default 5 ms), the first
one at once. Time to first token (TTFT) is measured by the client from sending the request to
reading the first `event: token` frame; total is until the stream's end (after `done`).
"Added" = Portico's TTFT p50 minus the bare endpoint's, same engine, same level, same run.
Every message must end with `done`; an `error` event, another status, a transport error or a
reply without tokens counts in `errors`.

Part 2, open streams. A fresh `portico serve` (and, for comparison, a fresh bare proxy) whose
openai assistant points at the fake model streaming one chunk every --stream-interval seconds
without end. The client starts --streams sessions (16 at a time), then opens streams in steps
(--steps, e.g. 250,500,1000,1500,2000), at most --open-concurrency opening at once, and after
each step (or after --open-timeout seconds) records how many have received a token, how many
failed, how many have no token yet (waiting on the server, or not yet sent because
--open-concurrency streams are already waiting), the server's RSS (VmRSS from /proc/PID/status),
open file descriptors and CPU. At the top it holds every stream for --hold seconds and checks
that each keeps receiving tokens (alive = a token within the last 3 intervals), then closes them
all from the client side and records how long the server stays busy (it saves each cut reply)
and its RSS after. Portico runs on SQLite, and also on PostgreSQL with --postgres.
--stream-assistants K spreads the streams over K assistants with distinct base_urls (Portico
keeps one openai client, so one connection pool, per base_url, key and timeout).

The machine is shared, so CPU is accounted for per level (server, fake model, client, and
"other" = everything else on the machine); a level is measured again (--retries) when other
work used more than --max-other cores; the least disturbed attempt is kept, marked "disturbed" if
it still was.

Every process is started by this script on a free 127.0.0.1 port and stopped by its PID
(SIGTERM, then SIGKILL); nothing is looked up by name. Data goes to a temporary
folder, removed at the end (--keep keeps it). PostgreSQL (--postgres) uses its own database,
default portico_bench_chat, dropped and recreated, and dropped at the end.

    .venv/bin/python bench/chat.py                  # both parts on SQLite: ~8 min on a quiet machine
    .venv/bin/python bench/chat.py --quick          # 1 s + 2 s per level, 200 streams, 3 s hold
    .venv/bin/python bench/chat.py --databases postgresql --streams 0
    .venv/bin/python bench/chat.py --skip-replies --stream-assistants 2 --stream-interval 5

With one assistant, part 2 stops at 1,000 streams: the openai SDK's client allows 1,000
connections (httpx Limits max_connections=1000) and Portico keeps one client per base_url, key
and timeout; --stream-assistants 2 measures the process beyond that.

The exit status is 1 when a message failed or Portico did not hold every stream asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchkit import (
    Reply,
    Served,
    create_openai_assistant,
    fd_count,
    fetch_rows,
    fmt,
    least_disturbed,
    machine_cpu,
    machine_line,
    new_client,
    percentile,
    proc_status,
    process_cpu,
    raise_fd_limit,
    recreate_database,
    refuse_protected,
    script,
    seed_demo,
    send_message,
    serve_portico,
    settings,
    source_line,
)

QUIET = 0.15  # share of the machine other work may use before a level starts
QUESTION = "How long does a session last?"


# --- processes ------------------------------------------------------------------------------


@dataclass
class Portico:
    server: Served
    token: str
    demo_public_id: str
    database_url: str


@contextlib.contextmanager
def start_portico(
    label: str, workdir: Path, database_url: str | None, profile_dir: Path | None = None
) -> Iterator[Portico]:
    """A fresh data folder (and database), `portico demo`, then `portico serve`."""
    log_path = workdir / f"{label}.log"
    if database_url:
        asyncio.run(recreate_database(database_url))
    config = settings(workdir / label, database_url or "")
    demo = seed_demo(config, log_path)
    profile = profile_dir / f"{label}.prof" if profile_dir is not None else None
    with serve_portico(label, config, log_path, profile=profile) as server:
        yield Portico(server, demo.token, demo.public_id, config.resolved_database_url)


def fake_model(workdir: Path, label: str) -> contextlib.AbstractContextManager[Served]:
    return script(label, "fake_model.py", workdir / f"{label}.log")


def start_bare(
    workdir: Path, label: str, upstream: str, model: str, reply_file: Path | None
) -> contextlib.AbstractContextManager[Served]:
    extra = ["--reply-file", str(reply_file)] if reply_file is not None else []
    return script(label, "bare_stream.py", workdir / f"{label}.log", "--upstream", upstream, "--model", model, *extra)


# --- the client -----------------------------------------------------------------------------


async def start_sessions(base_url: str, public_id: str, count: int, concurrency: int = 16) -> list[tuple[int, str]]:
    """`count` guest sessions, `concurrency` at a time: [(session_id, token)]."""
    sessions: list[tuple[int, str]] = []
    queue = iter(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in queue:
            answer = await client.post(base_url + "/api/v1/chat/sessions", json={"public_id": public_id})
            if answer.status_code != 201:
                raise RuntimeError(f"starting a session answered {answer.status_code}: {answer.text[:200]}")
            data = answer.json()
            sessions.append((data["session_id"], data["token"]))

    clients = [new_client() for _ in range(min(concurrency, count))]
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for client in clients:
            await client.aclose()
    return sessions


# --- part 1: replies ------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    engine: str  # builtin or openai: what it is compared with
    server: Served
    url: str  # POST url; for Portico with {sid} to fill in
    public_id: str | None = None  # Portico: the assistant guests talk to
    others: list[Served] = field(default_factory=list)  # other processes whose CPU is the load's (the fake model)

    @property
    def is_portico(self) -> bool:
        return self.public_id is not None


@dataclass
class Phase:
    target: str
    engine: str
    clients: int
    messages: int = 0  # completed with done
    errors: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    ttft_ms: list[float] = field(default_factory=list, repr=False)
    total_ms: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    upstream_cpu_s: float = 0.0  # the fake model's
    client_cpu_s: float = 0.0
    machine_busy: float = 0.0
    background: float = 0.0
    disturbed: bool = False

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0

    @property
    def other_cpu(self) -> float:
        ours = self.server_cpu_s + self.upstream_cpu_s + self.client_cpu_s
        cores = os.cpu_count() or 1
        return max(self.machine_busy * cores - ours / self.elapsed, 0.0) if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        del data["ttft_ms"], data["total_ms"]
        data.update(
            rate=round(self.rate, 1),
            ttft_p50_ms=round(percentile(self.ttft_ms, 50), 2),
            ttft_p99_ms=round(percentile(self.ttft_ms, 99), 2),
            total_p50_ms=round(percentile(self.total_ms, 50), 2),
            total_p99_ms=round(percentile(self.total_ms, 99), 2),
            other_cpu_cores=round(self.other_cpu, 2),
        )
        return data


async def drive(
    target: Target,
    sessions: list[tuple[int, str]],
    clients: list[httpx.AsyncClient],
    phase: Phase,
    seconds: float,
    max_messages: int,
    body: bytes,
) -> None:
    started = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient, session_id: int, token: str) -> None:
        nonlocal started
        url = target.url.format(sid=session_id)
        failures = 0
        while time.perf_counter() < deadline and started < max_messages and failures < 20:
            started += 1
            reply = await send_message(client, url, token, body)
            if reply.error is not None:
                phase.errors += 1
                failures += 1
                if len(phase.error_samples) < 5:
                    phase.error_samples.append(reply.error)
                continue
            failures = 0
            phase.messages += 1
            phase.tokens += reply.tokens
            phase.ttft_ms.append(1000 * (reply.ttft or 0.0))
            phase.total_ms.append(1000 * reply.total)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(clients[i], *sessions[i]) for i in range(phase.clients)))
    phase.elapsed = time.perf_counter() - t0


async def run_level(target: Target, clients_n: int, warmup: float, duration: float, max_messages: int) -> Phase:
    if target.is_portico:
        sessions = await start_sessions(target.server.base_url, target.public_id or "", clients_n)
    else:
        sessions = [(0, f"bare-{i}") for i in range(clients_n)]
    body = json.dumps({"content": QUESTION}).encode()
    # One client (one keep-alive connection) per worker: a shared httpx pool costs the client
    # CPU per request that grows with the pool (see bench/session_start.py).
    clients = [new_client() for _ in range(clients_n)]
    try:
        if warmup > 0:
            await drive(
                target, sessions, clients, Phase(target.name, target.engine, clients_n), warmup, max_messages, body
            )
        phase = Phase(target.name, target.engine, clients_n)
        pids = [target.server.pid] + [s.pid for s in target.others]
        cpu0 = [process_cpu(pid) for pid in pids]
        client0, machine0 = time.process_time(), machine_cpu()
        await drive(target, sessions, clients, phase, duration, max_messages, body)
        cpu1 = [process_cpu(pid) for pid in pids]
        client1, machine1 = time.process_time(), machine_cpu()
    finally:
        for client in clients:
            await client.aclose()
    phase.server_cpu_s = cpu1[0] - cpu0[0]
    phase.upstream_cpu_s = sum(b - a for a, b in zip(cpu0[1:], cpu1[1:], strict=True))
    phase.client_cpu_s = client1 - client0
    phase.machine_busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return phase


def server_side_times(database_url: str) -> dict[str, dict[str, float]]:
    """Portico's own record of each reply (messages.first_token_ms, duration_ms), by assistant:
    the time from the engine call to the first token, as the server saw it."""
    rows = fetch_rows(
        database_url,
        "SELECT a.name, m.first_token_ms, m.duration_ms FROM messages m "
        "JOIN chat_sessions s ON s.id = m.session_id JOIN assistants a ON a.id = s.assistant_id "
        "WHERE m.role = 'assistant' AND m.error_code IS NULL",
    )
    out: dict[str, dict[str, float]] = {}
    for name in sorted({r[0] for r in rows}):
        first = [float(r[1]) for r in rows if r[0] == name and r[1] is not None]
        whole = [float(r[2]) for r in rows if r[0] == name and r[2] is not None]
        out[name] = {
            "replies": len(whole),
            "first_token_p50_ms": percentile(first, 50),
            "first_token_p99_ms": percentile(first, 99),
            "duration_p50_ms": percentile(whole, 50),
        }
    return out


# --- part 2: open streams -------------------------------------------------------------------


@dataclass
class Stream:
    opened: float = 0.0
    first_token: float | None = None
    last_token: float | None = None
    tokens: int = 0
    error: str | None = None
    ended: bool = False
    max_gap: float = 0.0  # longest wait between two tokens since `gap_from`


@dataclass
class Step:
    streams: int
    alive: int
    failed: int
    waiting: int
    open_seconds: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    rss_mib: float
    fds: int
    threads: int
    server_cores: float
    upstream_rss_mib: float


@dataclass
class StreamRun:
    target: str
    database: str
    requested: int
    interval: float
    assistants: int
    rss_started_mib: float = 0.0
    rss_warm_mib: float = 0.0
    rss_sessions_mib: float = 0.0
    sessions_seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    hold_seconds: float = 0.0
    alive_at_end: int = 0
    fresh_at_end: int = 0  # a token within the last 3 intervals
    tokens_per_s: float = 0.0  # delivered during the hold, all streams
    expected_tokens_per_s: float = 0.0
    gap_p50_s: float = 0.0  # per stream: its longest gap between two tokens during the hold
    gap_max_s: float = 0.0
    hold_server_cores: float = 0.0
    hold_upstream_cores: float = 0.0
    hold_client_cores: float = 0.0
    rss_peak_mib: float = 0.0  # VmHWM
    rss_top_mib: float = 0.0
    kib_per_stream: float = 0.0
    close_busy_seconds: float = 0.0
    rss_after_close_mib: float = 0.0
    saved_replies: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def mib(kib: int | float) -> float:
    return kib / 1024


async def hold_streams(
    label: str,
    database: str,
    server: Served,
    upstream: Served,
    urls: list[str],
    tokens: list[str],
    steps: list[int],
    interval: float,
    hold: float,
    open_concurrency: int,
    open_timeout: float,
    assistants: int,
) -> StreamRun:
    """Open streams in steps up to len(urls), hold them, close them; measure the server."""
    run = StreamRun(label, database, len(urls), interval, assistants)
    body = json.dumps({"content": QUESTION}).encode()
    streams = [Stream() for _ in urls]
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(open_concurrency)
    gap_from = [float("inf")]
    # Groups of 100 streams share a client (a pool of 100 connections): one client per stream
    # would be 2,000 clients, one pool of 2,000 costs O(pool) per request in httpcore.
    pools = [new_client(100, timeout=max(open_timeout, 10 * interval, 60)) for _ in range(0, len(urls), 100)]

    async def one(i: int) -> None:
        s = streams[i]
        headers = {
            "Authorization": f"Bearer {tokens[i]}",
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
        }
        released = False
        await gate.acquire()
        s.opened = time.perf_counter()
        try:
            async with pools[i // 100].stream("POST", urls[i], content=body, headers=headers) as answer:
                if answer.status_code != 200:
                    await answer.aread()
                    s.error = f"{answer.status_code}"
                    return
                event = ""
                async for line in answer.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "token":
                            now = time.perf_counter()
                            if s.first_token is None:
                                s.first_token = now
                                gate.release()
                                released = True
                            elif now > gap_from[0]:
                                s.max_gap = max(s.max_gap, now - max(s.last_token or now, gap_from[0]))
                            s.last_token = now
                            s.tokens += 1
                        elif event == "error":
                            s.error = "error event: " + json.loads(line[5:]).get("code", "?")
                s.ended = True
        except httpx.HTTPError as exc:
            s.error = type(exc).__name__
        finally:
            if not released:
                gate.release()

    pid = server.pid
    run.rss_started_mib = mib(proc_status(pid).get("VmRSS", 0))
    opened = 0
    try:
        for target in steps:
            target = min(target, len(urls))
            if target <= opened:
                continue
            cpu0, t0 = process_cpu(pid), time.perf_counter()
            new = range(opened, target)
            for i in new:
                tasks.append(asyncio.create_task(one(i)))
            opened = target
            deadline = time.perf_counter() + open_timeout
            while time.perf_counter() < deadline:
                if all(streams[i].first_token is not None or streams[i].error or streams[i].ended for i in new):
                    break
                await asyncio.sleep(0.05)
            took = time.perf_counter() - t0
            cpu1 = process_cpu(pid)
            status = proc_status(pid)
            ttfts = [1000 * (streams[i].first_token - streams[i].opened) for i in new if streams[i].first_token]
            alive = sum(1 for s in streams[:opened] if s.first_token and not s.error and not s.ended)
            failed = sum(1 for s in streams[:opened] if s.error or s.ended)
            step = Step(
                streams=opened,
                alive=alive,
                failed=failed,
                waiting=opened - alive - failed,
                open_seconds=took,
                ttft_p50_ms=percentile(ttfts, 50),
                ttft_p99_ms=percentile(ttfts, 99),
                rss_mib=mib(status.get("VmRSS", 0)),
                fds=fd_count(pid),
                threads=status.get("Threads", 0),
                server_cores=(cpu1 - cpu0) / took if took else 0.0,
                upstream_rss_mib=mib(proc_status(upstream.pid).get("VmRSS", 0)),
            )
            run.steps.append(step)
            print(
                f"[{label}] {opened:>5} streams: {alive} alive, {failed} failed, {step.waiting} waiting; opened in "
                f"{took:.1f} s, TTFT p50 {step.ttft_p50_ms:.0f} ms p99 {step.ttft_p99_ms:.0f} ms; RSS "
                f"{step.rss_mib:.0f} MiB, {step.fds} fds, server {step.server_cores:.2f} cores",
                flush=True,
            )

        # Hold: every stream should keep receiving a token every `interval` seconds.
        counts0 = sum(s.tokens for s in streams)
        cpu0, up0, client0, t0 = process_cpu(pid), process_cpu(upstream.pid), time.process_time(), time.perf_counter()
        gap_from[0] = t0
        await asyncio.sleep(hold)
        t1 = time.perf_counter()
        run.hold_seconds = t1 - t0
        run.tokens_per_s = (sum(s.tokens for s in streams) - counts0) / run.hold_seconds
        run.hold_server_cores = (process_cpu(pid) - cpu0) / run.hold_seconds
        run.hold_upstream_cores = (process_cpu(upstream.pid) - up0) / run.hold_seconds
        run.hold_client_cores = (time.process_time() - client0) / run.hold_seconds
        live = [s for s in streams if s.first_token and not s.error and not s.ended]
        run.alive_at_end = len(live)
        run.fresh_at_end = sum(1 for s in live if s.last_token and t1 - s.last_token <= 3 * interval)
        run.expected_tokens_per_s = len(live) / interval
        gaps = [s.max_gap for s in live]
        run.gap_p50_s, run.gap_max_s = percentile(gaps, 50), max(gaps, default=float("nan"))
        status = proc_status(pid)
        run.rss_top_mib, run.rss_peak_mib = mib(status.get("VmRSS", 0)), mib(status.get("VmHWM", 0))
        print(
            f"[{label}] held {run.hold_seconds:.0f} s: {run.alive_at_end} alive, {run.fresh_at_end} with a token in "
            f"the last {3 * interval:g} s; {run.tokens_per_s:,.0f} tokens/s delivered of {run.expected_tokens_per_s:,.0f}; "
            f"longest gap p50 {run.gap_p50_s:.2f} s, max {run.gap_max_s:.2f} s; server {run.hold_server_cores:.2f} cores, "
            f"RSS {run.rss_top_mib:.0f} MiB (peak {run.rss_peak_mib:.0f})",
            flush=True,
        )
    finally:
        # Close every stream from the client side (a guest closing the tab), then watch the
        # server until it is idle again: Portico saves each cut reply.
        t_close = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pool in pools:
            await pool.aclose()
        quiet_since = None
        last = process_cpu(pid)
        while time.perf_counter() - t_close < 120:
            await asyncio.sleep(0.25)
            now_cpu = process_cpu(pid)
            busy = (now_cpu - last) / 0.25
            last = now_cpu
            if busy < 0.05:
                quiet_since = quiet_since or time.perf_counter()
                if time.perf_counter() - quiet_since >= 1.0:
                    break
            else:
                quiet_since = None
        run.close_busy_seconds = (quiet_since or time.perf_counter()) - t_close
        run.rss_after_close_mib = mib(proc_status(pid).get("VmRSS", 0))
    for s in streams:
        if s.error:
            run.errors[s.error] = run.errors.get(s.error, 0) + 1
        elif s.first_token is None:
            run.errors["no token"] = run.errors.get("no token", 0) + 1
    return run


def saved_reply_counts(database_url: str) -> dict[str, int]:
    query = "SELECT coalesce(error_code, 'ok'), count(*) FROM messages WHERE role = 'assistant' GROUP BY 1"
    return dict(fetch_rows(database_url, query))


def streams_part(args: argparse.Namespace, workdir: Path, database: str) -> list[StreamRun]:
    runs: list[StreamRun] = []
    model = f"fake:chunks=0,delay_ms={args.stream_interval * 1000:g},first_ms=0,max_s={args.stream_max_seconds:g}"
    steps = sorted({s for s in args.steps if s < args.streams} | {args.streams})
    with fake_model(workdir, f"fake-model-streams-{database}") as fake:
        upstream = fake.base_url + "/v1"
        if "portico" in args.stream_targets:
            label = f"portico-{database}"
            pg_url = args.postgres_url if database == "postgresql" else None
            with start_portico(f"{label}-streams", workdir, pg_url, args.profile_dir) as portico:
                pid = portico.server.pid
                rss_started = mib(proc_status(pid).get("VmRSS", 0))
                # K assistants, each its own base_url path, so Portico keeps K model clients (pools).
                public_ids = [
                    create_openai_assistant(
                        portico.server.base_url,
                        portico.token,
                        f"slow {k}",
                        f"{fake.base_url}/a{k}/v1",
                        model,
                        args.stream_timeout,
                    )
                    for k in range(args.stream_assistants)
                ]
                # Warm: one short reply through the same code path (imports, the knowledge index).
                warm_id = create_openai_assistant(
                    portico.server.base_url, portico.token, "warm", upstream, "fake:chunks=3,delay_ms=1"
                )
                warm = asyncio.run(start_sessions(portico.server.base_url, warm_id, 1))

                async def warm_up() -> None:
                    async with new_client() as client:
                        url = f"{portico.server.base_url}/api/v1/chat/sessions/{warm[0][0]}/messages"
                        reply = await send_message(client, url, warm[0][1], json.dumps({"content": QUESTION}).encode())
                        if reply.error:
                            raise RuntimeError(f"warm-up message failed: {reply.error}")

                asyncio.run(warm_up())
                rss_warm = mib(proc_status(pid).get("VmRSS", 0))
                t0 = time.perf_counter()
                per = [
                    args.streams // len(public_ids) + (1 if k < args.streams % len(public_ids) else 0)
                    for k in range(len(public_ids))
                ]

                async def all_sessions() -> list[tuple[int, str]]:
                    out: list[tuple[int, str]] = []
                    for public_id, count in zip(public_ids, per, strict=True):
                        out += await start_sessions(portico.server.base_url, public_id, count, 16)
                    return out

                sessions = asyncio.run(all_sessions())
                sessions_seconds = time.perf_counter() - t0
                rss_sessions = mib(proc_status(pid).get("VmRSS", 0))
                print(
                    f"[{label}] pid {pid}: RSS {rss_started:.0f} MiB started, {rss_warm:.0f} MiB warm; "
                    f"{len(sessions):,} sessions started in {sessions_seconds:.1f} s, RSS {rss_sessions:.0f} MiB",
                    flush=True,
                )
                urls = [f"{portico.server.base_url}/api/v1/chat/sessions/{sid}/messages" for sid, _ in sessions]

                async def go() -> StreamRun:
                    return await hold_streams(
                        label,
                        database,
                        portico.server,
                        fake,
                        urls,
                        [t for _, t in sessions],
                        steps,
                        args.stream_interval,
                        args.hold,
                        args.open_concurrency,
                        args.open_timeout,
                        args.stream_assistants,
                    )

                run = asyncio.run(go())
                run.rss_started_mib, run.rss_warm_mib, run.rss_sessions_mib = rss_started, rss_warm, rss_sessions
                if run.alive_at_end:
                    run.kib_per_stream = (run.rss_top_mib - rss_sessions) * 1024 / run.alive_at_end
                run.sessions_seconds = sessions_seconds
            run.saved_replies = saved_reply_counts(portico.database_url)
            print(
                f"[{label}] replies saved after the close: {run.saved_replies}; errors {run.errors or 'none'}",
                flush=True,
            )
            runs.append(run)
        if "bare" in args.stream_targets and database == args.databases[0]:
            with start_bare(workdir, "bare-proxy-streams", upstream, model, None) as bare:
                rss_started = mib(proc_status(bare.pid).get("VmRSS", 0))

                # Warm the same way (one reply, here a slow stream cut after its first token).
                async def warm_bare() -> None:
                    async with new_client() as client:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(
                                send_message(
                                    client, bare.base_url + "/proxy", "bare", json.dumps({"content": QUESTION}).encode()
                                ),
                                args.stream_interval * 1.5 + 1,
                            )

                asyncio.run(warm_bare())
                rss_warm = mib(proc_status(bare.pid).get("VmRSS", 0))
                urls = [bare.base_url + "/proxy"] * args.streams

                async def go2() -> StreamRun:
                    return await hold_streams(
                        "bare-proxy",
                        "-",
                        bare,
                        fake,
                        urls,
                        [f"bare-{i}" for i in range(args.streams)],
                        steps,
                        args.stream_interval,
                        args.hold,
                        args.open_concurrency,
                        args.open_timeout,
                        1,
                    )

                run = asyncio.run(go2())
                run.rss_started_mib, run.rss_warm_mib, run.rss_sessions_mib = rss_started, rss_warm, rss_warm
                if run.alive_at_end:
                    run.kib_per_stream = (run.rss_top_mib - rss_warm) * 1024 / run.alive_at_end
            runs.append(run)
    return runs


# --- report ---------------------------------------------------------------------------------


def bare_of(phase: Phase, phases: list[Phase]) -> Phase | None:
    return next(
        (p for p in phases if p.engine == phase.engine and p.clients == phase.clients and p.target.startswith("bare")),
        None,
    )


def replies_table(phases: list[Phase]) -> str:
    header = (
        "| engine | target | sessions | messages | errors | messages/s | TTFT p50 ms | TTFT p99 ms "
        "| total p50 ms | total p99 ms | added TTFT p50 ms | added TTFT p99 ms |"
    )
    lines = [header, "|---|---" + "|---:" * (header.count("|") - 3) + "|"]
    for p in sorted(phases, key=lambda p: (p.engine, p.clients, not p.target.startswith("bare"))):
        bare = bare_of(p, phases)
        if bare is not None and bare is not p:
            added50 = fmt(percentile(p.ttft_ms, 50) - percentile(bare.ttft_ms, 50), 2)
            added99 = fmt(percentile(p.ttft_ms, 99) - percentile(bare.ttft_ms, 99), 2)
        else:
            added50 = added99 = "-"
        mark = " (disturbed)" if p.disturbed else ""
        lines.append(
            f"| {p.engine} | {p.target}{mark} | {p.clients} | {p.messages:,} | {p.errors} | {fmt(p.rate)} "
            f"| {fmt(percentile(p.ttft_ms, 50), 2)} | {fmt(percentile(p.ttft_ms, 99), 2)} "
            f"| {fmt(percentile(p.total_ms, 50), 2)} | {fmt(percentile(p.total_ms, 99), 2)} | {added50} | {added99} |"
        )
    return "\n".join(lines)


def cpu_table(phases: list[Phase]) -> str:
    header = (
        "| engine | target | sessions | tokens/message | server CPU ms/message | fake model CPU ms/message "
        "| client CPU ms/message | server cores | fake model cores | client cores | other cores |"
    )
    lines = [header, "|---|---" + "|---:" * (header.count("|") - 3) + "|"]
    for p in sorted(phases, key=lambda p: (p.engine, p.clients, not p.target.startswith("bare"))):

        def per(seconds: float, messages: int = p.messages) -> str:
            return f"{1000 * seconds / messages:.2f}" if messages else "-"

        e = p.elapsed or 1
        lines.append(
            f"| {p.engine} | {p.target} | {p.clients} | {p.tokens / p.messages if p.messages else 0:.0f} "
            f"| {per(p.server_cpu_s)} | {per(p.upstream_cpu_s) if p.engine == 'openai' else '-'} | {per(p.client_cpu_s)} "
            f"| {p.server_cpu_s / e:.2f} | {p.upstream_cpu_s / e:.2f} | {p.client_cpu_s / e:.2f} | {p.other_cpu:.2f} |"
        )
    return "\n".join(lines)


def steps_table(run: StreamRun) -> str:
    header = (
        "| open streams | alive | failed | no token yet | seconds to open the step | TTFT p50 ms | TTFT p99 ms "
        "| server RSS MiB | server fds | server CPU cores while opening | fake model RSS MiB |"
    )
    lines = [header, "|" + "---:|" * (header.count("|") - 1)]
    for s in run.steps:
        lines.append(
            f"| {s.streams:,} | {s.alive:,} | {s.failed:,} | {s.waiting:,} | {s.open_seconds:.1f} | {fmt(s.ttft_p50_ms, 0)} "
            f"| {fmt(s.ttft_p99_ms, 0)} | {s.rss_mib:.0f} | {s.fds:,} | {s.server_cores:.2f} | {s.upstream_rss_mib:.0f} |"
        )
    return "\n".join(lines)


def streams_summary_table(runs: list[StreamRun]) -> str:
    header = (
        "| target | streams asked | alive after the hold | with a token in the last 3 intervals | tokens/s delivered "
        "(expected) | longest gap p50 / max s | cores holding: server / fake model / client | RSS started / warm / sessions MiB "
        "| RSS holding (peak) MiB | KiB per stream | busy after close s | RSS after close MiB |"
    )
    lines = [header, "|---" + "|---:" * (header.count("|") - 2) + "|"]
    for r in runs:
        lines.append(
            f"| {r.target} | {r.requested:,} | {r.alive_at_end:,} | {r.fresh_at_end:,} "
            f"| {r.tokens_per_s:,.0f} ({r.expected_tokens_per_s:,.0f}) | {fmt(r.gap_p50_s, 2)} / {fmt(r.gap_max_s, 2)} "
            f"| {r.hold_server_cores:.2f} / {r.hold_upstream_cores:.2f} / {r.hold_client_cores:.2f} | {r.rss_started_mib:.0f} / {r.rss_warm_mib:.0f} / {r.rss_sessions_mib:.0f} "
            f"| {r.rss_top_mib:.0f} ({r.rss_peak_mib:.0f}) | {r.kib_per_stream:.0f} | {r.close_busy_seconds:.1f} "
            f"| {r.rss_after_close_mib:.0f} |"
        )
    return "\n".join(lines)


def goal_lines(phases: list[Phase], runs: list[StreamRun]) -> list[str]:
    out = []
    for p in sorted(phases, key=lambda p: (p.engine, p.clients)):
        bare = bare_of(p, phases)
        if bare is None or bare is p:
            continue
        added = percentile(p.ttft_ms, 50) - percentile(bare.ttft_ms, 50)
        out.append(
            f"Goal TTFT: {p.target} at {p.clients} sessions adds {added:.2f} ms p50 over {bare.target} "
            f"-> {'met' if added < 5 else 'NOT met'} (< 5 ms)"
        )
    for r in runs:
        if r.target.startswith("portico"):
            ok = r.fresh_at_end >= 2000
            out.append(
                f"Goal streams: {r.target} held {r.fresh_at_end:,} live streams of {r.requested:,} asked, RSS "
                f"{r.rss_top_mib:.0f} MiB -> {'met' if ok else 'NOT met'} (2,000)"
            )
    return out


# --- main -----------------------------------------------------------------------------------


def parse_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


SERVER_RECORDS: dict[str, dict[str, dict[str, float]]] = {}  # database -> assistant -> figures


def replies_part(args: argparse.Namespace, workdir: Path, database: str, with_bare: bool = True) -> list[Phase]:
    stack = contextlib.ExitStack()
    fake = stack.enter_context(fake_model(workdir, f"fake-model-{database}"))
    model = f"fake:chunks={args.chunks},delay_ms={args.chunk_ms:g},first_ms={args.first_ms:g}"
    pg_url = args.postgres_url if database == "postgresql" else None
    portico = stack.enter_context(start_portico(f"portico-{database}", workdir, pg_url, args.profile_dir))
    openai_id = create_openai_assistant(portico.server.base_url, portico.token, "openai", fake.base_url + "/v1", model)

    # The text Portico's builtin engine answers, so that the bare endpoint streams the same pieces.
    async def sample() -> Reply:
        ((sid, token),) = await start_sessions(portico.server.base_url, portico.demo_public_id, 1)
        async with new_client() as client:
            url = f"{portico.server.base_url}/api/v1/chat/sessions/{sid}/messages"
            return await send_message(client, url, token, json.dumps({"content": QUESTION}).encode(), keep_text=True)

    reply = asyncio.run(sample())
    if reply.error:
        raise RuntimeError(f"the builtin sample reply failed: {reply.error}")
    reply_file = workdir / "builtin-reply.txt"
    reply_file.write_text(reply.text, encoding="utf-8")
    bare = stack.enter_context(start_bare(workdir, f"bare-stream-{database}", fake.base_url + "/v1", model, reply_file))
    print(
        f"[{database}] portico pid {portico.server.pid} {portico.server.base_url}, bare pid {bare.pid} {bare.base_url}, "
        f"fake model pid {fake.pid} {fake.base_url} ({model}); builtin reply: {reply.tokens} tokens",
        flush=True,
    )
    msg_url = portico.server.base_url + "/api/v1/chat/sessions/{sid}/messages"
    targets = {
        "portico-builtin": Target(f"portico-{database}", "builtin", portico.server, msg_url, portico.demo_public_id),
        "bare-builtin": Target("bare-builtin", "builtin", bare, bare.base_url + "/builtin"),
        "portico-openai": Target(f"portico-{database}", "openai", portico.server, msg_url, openai_id, [fake]),
        "bare-proxy": Target("bare-proxy", "openai", bare, bare.base_url + "/proxy", None, [fake]),
    }
    if not with_bare:  # the bare endpoints are measured once per run, beside the first database
        del targets["bare-builtin"], targets["bare-proxy"]
    phases: list[Phase] = []
    with stack:
        for clients in args.clients:
            for key, target in targets.items():

                def measure(target: Target = target, clients: int = clients, key: str = key) -> Phase:
                    phase = asyncio.run(run_level(target, clients, args.warmup, args.duration, args.max_messages))
                    print(
                        f"[{key:<15}] {clients:>3} sessions: {phase.messages:>6,} messages, {phase.errors} errors, "
                        f"{phase.rate:7,.1f}/s, TTFT p50 {fmt(percentile(phase.ttft_ms, 50), 2)} ms p99 "
                        f"{fmt(percentile(phase.ttft_ms, 99), 2)} ms, total p50 {fmt(percentile(phase.total_ms, 50), 1)} ms; "
                        f"cores: server {phase.server_cpu_s / phase.elapsed:.2f}, fake model "
                        f"{phase.upstream_cpu_s / phase.elapsed:.2f}, client {phase.client_cpu_s / phase.elapsed:.2f}, "
                        f"other {phase.other_cpu:.2f}",
                        flush=True,
                    )
                    for sample_error in phase.error_samples:
                        print(f"[{key}]     error: {sample_error}", flush=True)
                    return phase

                phases.append(
                    least_disturbed(
                        measure,
                        f"[{key}]",
                        quiet=QUIET,
                        patience=args.quiet_wait,
                        max_other=args.max_other,
                        retries=args.retries,
                    )
                )
        stack.close()  # Portico has saved every reply once it has stopped
        SERVER_RECORDS[database] = server_side_times(portico.database_url)
        for name, stats in SERVER_RECORDS[database].items():
            print(
                f"[{database}] Portico's own record, assistant '{name}': {stats['replies']:,} replies, engine call to "
                f"first token p50 {stats['first_token_p50_ms']:.0f} ms p99 {stats['first_token_p99_ms']:.0f} ms, "
                f"whole reply p50 {stats['duration_p50_ms']:.0f} ms",
                flush=True,
            )
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 1 s warm-up + 2 s per level, 200 streams, 3 s hold"
    )
    parser.add_argument(
        "--clients", type=parse_ints, default=[1, 16, 64], help="concurrent sessions per level (default 1,16,64)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per level (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level (default 1)")
    parser.add_argument("--max-messages", type=int, default=50_000, help="cap on messages per phase")
    parser.add_argument("--chunks", type=int, default=20, help="tokens the fake model sends per reply (default 20)")
    parser.add_argument("--chunk-ms", type=float, default=5.0, help="ms between two fake-model tokens (default 5)")
    parser.add_argument(
        "--first-ms", type=float, default=0.0, help="ms before the fake model's first token (default 0)"
    )
    parser.add_argument(
        "--streams", type=int, default=2000, help="open streams to reach in part 2 (default 2000; 0 skips)"
    )
    parser.add_argument(
        "--steps",
        type=parse_ints,
        default=[250, 500, 1000, 1500, 2000],
        help="ramp steps (default 250,500,1000,1500,2000)",
    )
    parser.add_argument(
        "--stream-interval", type=float, default=1.0, help="seconds between two tokens of a held stream (default 1)"
    )
    parser.add_argument(
        "--stream-max-seconds",
        type=float,
        default=600.0,
        help="the fake model ends a held stream after this long (default 600)",
    )
    parser.add_argument(
        "--stream-timeout",
        type=float,
        default=30.0,
        help="the held assistants' engine timeout, seconds (default 30, Portico's default)",
    )
    parser.add_argument(
        "--stream-assistants",
        type=int,
        default=1,
        help="spread the streams over this many assistants, each with its own base_url (default 1)",
    )
    parser.add_argument("--stream-targets", default="portico,bare", help="part 2 targets: portico, bare (default both)")
    parser.add_argument(
        "--hold",
        type=float,
        default=40.0,
        help="seconds to hold every stream open at the top (default 40: one sweep runs every 30 s)",
    )
    parser.add_argument("--open-concurrency", type=int, default=100, help="streams opening at once (default 100)")
    parser.add_argument(
        "--open-timeout",
        type=float,
        default=60.0,
        help="seconds a step may take to get every new stream its first token (default 60)",
    )
    parser.add_argument("--skip-replies", action="store_true", help="only part 2")
    parser.add_argument(
        "--databases", default="sqlite", help="Portico's databases, in order: sqlite, postgresql (default sqlite)"
    )
    parser.add_argument("--postgres", action="store_true", help="the same as --databases sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/portico_bench_chat",
        help="dropped and recreated",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="wait up to this long for the machine to be quiet before a level"
    )
    parser.add_argument(
        "--max-other", type=float, default=0.3, help="measure a level again when other work used more cores than this"
    )
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument(
        "--profile-dir", type=Path, help="run each `portico serve` under cProfile, writing <label>.prof here"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (logs, SQLite files) and the database"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.duration, args.hold = 1.0, 2.0, 3.0
        args.streams = min(args.streams, 200)
        args.steps = [100, 200]
    args.stream_targets = [t.strip() for t in args.stream_targets.split(",") if t.strip()]
    args.databases = (
        ["sqlite", "postgresql"] if args.postgres else [d.strip() for d in args.databases.split(",") if d.strip()]
    )
    if not args.databases or set(args.databases) - {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite, postgresql or both")
    if "postgresql" in args.databases:
        refuse_protected(args.postgres_url)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
        args.profile_dir = args.profile_dir.resolve()
    limit = raise_fd_limit()
    if args.streams * 2 + 200 > limit:
        parser.error(f"the open-file limit is {limit}; {args.streams} streams need about {args.streams * 2 + 200}")

    def interrupted(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so that `finally` stops every server this script started

    signal.signal(signal.SIGTERM, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="portico-bench-chat-"))
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: {machine_line()}")
    print(f"source: {source_line()}")
    print(f"work folder: {workdir}")
    phases: list[Phase] = []
    runs: list[StreamRun] = []
    status = 0
    try:
        if not args.skip_replies:
            print(
                f"\nPart 1, replies: {args.warmup:g} s warm-up + {args.duration:g} s per level, sessions {args.clients}; "
                f"fake model {args.chunks} chunks {args.chunk_ms:g} ms apart, first after {args.first_ms:g} ms",
                flush=True,
            )
            for database in args.databases:
                phases += replies_part(args, workdir, database, with_bare=database == args.databases[0])
        if args.streams > 0:
            print(
                f"\nPart 2, open streams: up to {args.streams:,} in steps {args.steps}, one token every "
                f"{args.stream_interval:g} s, held {args.hold:g} s; {args.stream_assistants} assistant(s)",
                flush=True,
            )
            for database in args.databases:
                runs += streams_part(args, workdir, database)
    except Exception as exc:  # noqa: BLE001 - report and stop the servers
        import traceback

        traceback.print_exc()
        print(f"\nerror: {exc}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    finally:
        if "postgresql" in args.databases and not args.keep:
            with contextlib.suppress(Exception):
                asyncio.run(recreate_database(args.postgres_url, drop_only=True))
        if not args.keep and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {workdir}", file=sys.stderr)

    if phases:
        print("\n" + replies_table(phases))
        print(f"\nWhere the CPU went ({os.cpu_count()} cores):\n" + cpu_table(phases))
        if sum(p.errors for p in phases):
            status = status or 1
    for run in runs:
        print(
            f"\nOpen streams, {run.target} ({run.assistants} assistant(s), a token every {run.interval:g} s):\n"
            + steps_table(run)
        )
    if runs:
        print("\n" + streams_summary_table(runs))
        for run in runs:
            if run.target.startswith("portico") and run.fresh_at_end < run.requested:
                status = status or 1
            if run.errors:
                print(f"{run.target}: streams that failed or got no token: {run.errors}")
            if run.saved_replies:
                print(f"{run.target}: replies saved: {run.saved_replies}")
    for line in goal_lines(phases, runs):
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "machine": machine_line(),
                    "source": source_line(),
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "replies": [p.summary() for p in phases],
                    "streams": [asdict(r) for r in runs],
                    "server_records": SERVER_RECORDS,
                    "goals": goal_lines(phases, runs),
                },
                indent=2,
            )
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
