"""Time Logs and Metrics through the HTTP API on a database seeded by bench/seed_logs.py.

Starts a real `portico serve` subprocess (one worker, log level warning, on a free loopback
port) against the seeded database, with the same PORTICO_DATA_DIR (so the same secret key), and
drives it with httpx, one request at a time, with the demo owner's API token. Each page is
requested once ("first": colder caches, reported separately), then --repeat times (twice only
when the first took over 5 s); the table gives the median and the max of those.

  logs_first        GET /sessions?limit=50
  logs_deep_user    GET /sessions?user=<link>&limit=50&cursor=<page 201>; the link is the one
                    with the median number of sessions among those with enough for 201 pages;
                    the 200 pages before it are followed first (their mean is reported too)
  logs_deep_all     the same 201st page without a filter
  logs_anonymous    user=anonymous, first page
  logs_rare_filter  channel=api&end_reason=max_duration, first page (about 0.3% of sessions)
  logs_one_day      from=to=<the day 45 days ago>, first page
  search_*          q=refund (a few % of messages), q=invoice (~0.3%), q=quokka (a few hundred
                    messages), first page
  transcript        GET /sessions/{id} of a session with 10 messages from the first page
  metrics_*         GET /metrics?period=30d&bucket=day, 30d&bucket=hour, 90d&bucket=day, today
  dashboard_*       with a signed-in cookie, when the pages exist (otherwise reported as
                    missing): /dashboard/assistants/1/logs (first page, and the deep page of
                    logs_deep_user), /logs/{id} (the same transcript), /metrics?period=30d and
                    /metrics (its default period, 7 days)
  export_csv        GET /sessions.csv, streamed to the end: rows, seconds, rows per second, and
                    the server's memory: VmRSS before, sampled every 50 ms during the export (max,
                    and at each 10% of the rows), VmHWM (peak, reset through /proc/PID/clear_refs
                    just before the export when the kernel allows it) and VmRSS after

The server is stopped at the end by the PID this script started it with (SIGTERM, then SIGKILL).
Results: bench/results/logs-metrics-<db>.json (<data-dir>/logs-metrics.json for another data
folder), and a Markdown table on stdout; the server's log: <data-dir>/server.log.

    .venv/bin/python bench/logs_metrics.py --db postgresql
    .venv/bin/python bench/logs_metrics.py --db sqlite --repeat 5 --skip-export
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchkit import demo_credentials, machine_line, proc_status, process_cpu, serve_portico, settings

RESULTS = Path(__file__).resolve().parent / "results"
ASSISTANT = 1
API = f"/api/v1/assistants/{ASSISTANT}"
DEEP_PAGES = 200
GOALS_MS = {"postgresql": 300, "sqlite": 1000}


# --- the server -----------------------------------------------------------------------------------


def rss(pid: int, key: str = "VmRSS") -> int:
    """VmRSS (or VmHWM) of a process, in bytes (0 once it is gone)."""
    return proc_status(pid).get(key, 0) * 1024


def reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- measuring --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, client: httpx.Client, repeat: int) -> None:
        self.client = client
        self.repeat = repeat
        self.results: dict[str, dict[str, Any]] = {}

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, params=params, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params} answered {response.status_code}: {response.text[:300]}")
        return response

    def time(self, name: str, path: str, params: dict[str, Any] | None = None, note: str = "", **kwargs: Any) -> Any:
        load_before = loadavg()
        started = time.perf_counter()
        response = self.get(path, params, **kwargs)
        first = (time.perf_counter() - started) * 1000
        times = []
        # A page that takes seconds is timed twice more only: the table says how slow it is anyway.
        repeat = self.repeat if first < 5000 else min(self.repeat, 2)
        for _ in range(repeat):
            started = time.perf_counter()
            self.get(path, params, **kwargs)
            times.append((time.perf_counter() - started) * 1000)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        items = len(body["items"]) if isinstance(body, dict) and "items" in body else None
        self.results[name] = {
            "path": path,
            "params": {k: v for k, v in (params or {}).items() if k != "cursor"}
            | ({"cursor": "(deep)"} if params and "cursor" in params else {}),
            "note": note,
            "first_ms": round(first, 1),
            "median_ms": round(statistics.median(times), 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
            "bytes": len(response.content),
            "items": items,
            "repeats": repeat,
            "load_before": load_before,
            "load_after": loadavg(),
        }
        r = self.results[name]
        print(
            f"  {name:<18} median {r['median_ms']:8.1f} ms  max {r['max_ms']:8.1f} ms  first {r['first_ms']:8.1f} ms"
            f"  ({r['bytes']:,} bytes{f', {items} items' if items is not None else ''}) {note}",
            flush=True,
        )
        return body

    def follow(self, params: dict[str, Any], pages: int) -> tuple[str, float]:
        """Follow `pages` pages of cursors; returns the next cursor and the mean ms per page."""
        cursor = None
        started = time.perf_counter()
        for _ in range(pages):
            body = self.get(f"{API}/sessions", {**params, **({"cursor": cursor} if cursor else {})}).json()
            cursor = body["next_cursor"]
            if cursor is None:
                raise RuntimeError(f"only {_ + 1} pages with {params}; seed more sessions")
        return cursor, (time.perf_counter() - started) * 1000 / pages


def export_csv(client: httpx.Client, pid: int, expected: int) -> dict[str, Any]:
    rss_before = rss(pid)
    hwm_before = rss(pid, "VmHWM")
    was_reset = reset_peak(pid)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set() and (now := rss(pid)):
            samples.append((time.perf_counter(), now))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before = process_cpu(pid)
    load_before = loadavg()
    sampler.start()
    started = time.perf_counter()
    lines = 0
    size = 0
    first_byte = None
    milestones: list[dict[str, Any]] = []
    step = max(1, expected // 10)
    next_mark = step
    with client.stream("GET", f"{API}/sessions.csv", timeout=httpx.Timeout(600.0)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"CSV export answered {response.status_code}")
        for chunk in response.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            lines += chunk.count(b"\n")
            size += len(chunk)
            if lines - 1 >= next_mark:
                milestones.append(
                    {
                        "rows": lines - 1,
                        "seconds": round(time.perf_counter() - started, 1),
                        "rss_mib": round(rss(pid) / 2**20, 1),
                    }
                )
                next_mark += step
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    rows = lines - 1  # the header
    peak_sampled = max((rss for _, rss in samples), default=rss_before)
    result = {
        "rows": rows,
        "bytes": size,
        "seconds": round(elapsed, 1),
        "rows_per_second": round(rows / elapsed),
        "first_byte_ms": round((first_byte or 0) * 1000, 1),
        "server_cpu_seconds": round(process_cpu(pid) - cpu_before, 1),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_peak_sampled_mib": round(peak_sampled / 2**20, 1),
        "vmhwm_mib": round(rss(pid, "VmHWM") / 2**20, 1),
        "vmhwm_reset": was_reset,
        "vmhwm_before_mib": round(hwm_before / 2**20, 1),
        "rss_after_mib": round(rss(pid) / 2**20, 1),
        "rss_at_each_tenth": milestones,
        "load_before": load_before,
        "load_after": loadavg(),
    }
    print(
        f"  export_csv         {rows:,} rows in {elapsed:.1f} s = {result['rows_per_second']:,} rows/s; RSS "
        f"{result['rss_before_mib']} MiB before, peak {result['rss_peak_sampled_mib']} MiB sampled "
        f"(VmHWM {result['vmhwm_mib']} MiB{'' if was_reset else ', not reset'}), {result['rss_after_mib']} MiB after",
        flush=True,
    )
    print("    RSS at each tenth: " + ", ".join(f"{m['rows']:,}: {m['rss_mib']}" for m in milestones), flush=True)
    if rows != expected:
        print(f"    warning: {expected:,} sessions expected", flush=True)
    return result


def sign_in(client: httpx.Client, email: str, password: str) -> bool:
    page = client.get("/dashboard/sign-in")
    found = re.search(r'name="csrf"\s+value="([^"]+)"', page.text) or re.search(
        r'value="([^"]+)"\s+name="csrf"', page.text
    )
    if page.status_code != 200 or not found:
        return False
    answer = client.post(
        "/dashboard/sign-in", data={"email": email, "password": password, "csrf": found.group(1), "next": "/dashboard"}
    )
    return answer.status_code in (200, 303) and "portico_session" in client.cookies


# --- main -----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--data-dir", type=Path, help="default bench/results/logs-<db> (as seed_logs.py)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--deep-pages", type=int, default=DEEP_PAGES, help="pages followed before the deep one")
    args = parser.parse_args()

    data_dir = (args.data_dir or RESULTS / f"logs-{args.db}").resolve()
    seed = json.loads((data_dir / "seed.json").read_text())
    creds = demo_credentials(data_dir)
    print(
        f"Logs and Metrics on {args.db}: {seed['sessions']:,} sessions, {seed['messages']:,} messages "
        f"(seeded {seed['seeded_at']})",
        flush=True,
    )
    config = settings(data_dir, seed["url"])
    with serve_portico("portico", config, data_dir / "server.log", PORTICO_LOG_LEVEL="warning") as server:
        run(args, seed, creds, server.base_url, server.pid)


def run(args: argparse.Namespace, seed: dict[str, Any], creds: dict[str, str], base_url: str, pid: int) -> None:
    data_dir = (args.data_dir or RESULTS / f"logs-{args.db}").resolve()
    out: dict[str, Any] = {
        "db": args.db,
        "date": datetime.now(UTC).isoformat(),
        "machine": machine_line(),
        "seed": seed,
        "repeat": args.repeat,
    }
    rss_start = rss(pid)
    headers = {"Authorization": f"Bearer {creds['api_token']}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=900.0) as client:
        bench = Bench(client, args.repeat)

        # Set-up, not timed: pick the user and the session to read.
        users = bench.get(f"{API}/metrics", {"period": "90d", "bucket": "day"}).json()["users"]
        need = (args.deep_pages + 1) * 50 + 1
        enough = sorted((u for u in users if u["sessions_used"] >= need), key=lambda u: u["sessions_used"])
        if not enough:
            raise SystemExit(f"no user has {need:,} sessions; seed more")
        user = enough[len(enough) // 2]
        out["deep_user"] = {"link_id": user["link_id"], "sessions": user["sessions_used"]}

        first = bench.time("logs_first", f"{API}/sessions", {"limit": 50})
        deep_user, per_page = bench.follow({"user": str(user["link_id"]), "limit": 50}, args.deep_pages)
        out["deep_user"]["mean_ms_per_page_following_200"] = round(per_page, 1)
        bench.time(
            "logs_deep_user",
            f"{API}/sessions",
            {"user": str(user["link_id"]), "limit": 50, "cursor": deep_user},
            note=f"link {user['link_id']} ({user['sessions_used']:,} sessions), "
            f"page {args.deep_pages + 1}; pages 1-{args.deep_pages} took {per_page:.1f} ms each on average",
        )
        deep_all, per_page_all = bench.follow({"limit": 50}, args.deep_pages)
        bench.time(
            "logs_deep_all",
            f"{API}/sessions",
            {"limit": 50, "cursor": deep_all},
            note=f"page {args.deep_pages + 1}; pages 1-{args.deep_pages} took {per_page_all:.1f} ms each",
        )
        bench.time("logs_anonymous", f"{API}/sessions", {"user": "anonymous", "limit": 50})
        bench.time("logs_rare_filter", f"{API}/sessions", {"channel": "api", "end_reason": "max_duration", "limit": 50})
        day = (datetime.now(UTC) - timedelta(days=45)).date().isoformat()
        bench.time("logs_one_day", f"{API}/sessions", {"from": day, "to": day, "limit": 50}, note=day)
        # The seed's three searched words, most common first (bench/seed_logs.py).
        for name, (word, count) in zip(
            ("search_common", "search_medium", "search_rare"), seed["word_counts"].items(), strict=True
        ):
            bench.time(name, f"{API}/sessions", {"q": word, "limit": 50}, note=f"q={word} (in ~{count:,} messages)")
        session = next((i for i in first["items"] if i["messages"] == 10), first["items"][0])
        bench.time(
            "transcript",
            f"{API}/sessions/{session['id']}",
            note=f"session {session['id']}, {session['messages']} messages",
        )
        for name, params in (
            ("metrics_30d_day", {"period": "30d", "bucket": "day"}),
            ("metrics_30d_hour", {"period": "30d", "bucket": "hour"}),
            ("metrics_90d_day", {"period": "90d", "bucket": "day"}),
            ("metrics_today", {"period": "today", "bucket": "hour"}),
        ):
            bench.time(name, f"{API}/metrics", params)

        with httpx.Client(base_url=base_url, timeout=900.0) as browser:
            pages: dict[str, Any] = {}
            if sign_in(browser, creds["email"], creds["password"]):
                dashboard = Bench(browser, args.repeat)
                base = f"/dashboard/assistants/{ASSISTANT}"
                for name, path, query in (
                    ("dashboard_logs", f"{base}/logs", None),
                    ("dashboard_logs_deep", f"{base}/logs", {"user": str(user["link_id"]), "cursor": deep_user}),
                    ("dashboard_transcript", f"{base}/logs/{session['id']}", None),
                    ("dashboard_metrics_30d", f"{base}/metrics", {"period": "30d"}),
                    ("dashboard_metrics", f"{base}/metrics", None),
                ):
                    pages[name] = browser.get(path, params=query).status_code
                    if pages[name] == 200:
                        dashboard.time(name, path, query)
                    else:
                        print(f"  {name:<18} not timed: {path} answered {pages[name]} (not there yet)", flush=True)
                bench.results.update(dashboard.results)
            else:
                pages["sign_in"] = "failed"
                print("  dashboard pages not timed: signing in failed", flush=True)
            out["dashboard_pages"] = pages

        out["pages"] = bench.results
        out["rss_start_mib"] = round(rss_start / 2**20, 1)
        if not args.skip_export:
            out["export_csv"] = export_csv(client, pid, seed["sessions"])
    goal = GOALS_MS[args.db]
    slow = {k: v["median_ms"] for k, v in out["pages"].items() if v["median_ms"] >= goal}
    out["goal_ms"] = goal
    out["pages_over_goal"] = slow
    default = data_dir == (RESULTS / f"logs-{args.db}").resolve()
    path = RESULTS / f"logs-metrics-{args.db}.json" if default else data_dir / "logs-metrics.json"
    path.write_text(json.dumps(out, indent=2))
    print()
    print(f"| page | median ms | max ms | first ms | goal < {goal} ms |")
    print("|---|---:|---:|---:|---|")
    for name, r in out["pages"].items():
        verdict = "met" if r["max_ms"] < goal else "median met, max over" if r["median_ms"] < goal else "MISSED"
        print(f"| {name} | {r['median_ms']} | {r['max_ms']} | {r['first_ms']} | {verdict} |")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
