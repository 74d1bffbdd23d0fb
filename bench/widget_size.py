"""Widget size and speed: what the loader and the open chat frame weigh, beside two published
embed scripts, and how long the bubble takes to appear.

One run does all of this:

1. Starts a real `portico serve` (SQLite in a temporary PORTICO_DATA_DIR seeded with
   `portico demo`, whose output names the demo assistant's public id) on a free 127.0.0.1 port,
   and a host website (http.server) on another port, so the widget runs cross-origin as it does
   on a customer's site.
2. Sizes. Opens the host page in Chromium (/usr/bin/chromium, headless, fresh profile), calls
   `Portico.open()` after the load event, waits for the greeting in the frame, and records every
   response from Portico's origin: the loader, the frame's HTML, its CSS and JS, the lookup the
   frame makes. Each body is gzipped here at level 9 and at level 6 (gzip's and zlib's default);
   `portico serve` itself does not compress (raw is what it sends without a compressing proxy).
3. Competitors. `npm pack flowise-embed` and `npm pack @typebot.io/js` (latest, into a temporary
   directory; nothing is committed), extracts `package/dist/web.js` from each and gzips it the
   same two ways.
4. Speed. Script tag -> visible bubble, --runs times: the host page has an inline script right
   before the loader's tag that takes `performance.now()` and watches the document with a
   MutationObserver; when the widget's element appears it waits one requestAnimationFrame (the
   frame that paints it) and takes `performance.now()` again. "cold" runs use a new browser
   context each time (empty HTTP cache: the loader is downloaded); "warm" runs reload in one
   context (the loader comes from the HTTP cache, max-age 3600). The loader waits for the host
   page's load event by design, so the time includes it; the page is tiny, so load ~= loader
   fetched and run.

Goals: loader <= 4 KB gzipped; loader + everything the open frame loads <= 25 KB gzipped (issue 22);
script tag -> visible bubble < 100 ms (median, cold, server on loopback). A goal is met when both
gzip levels are within it.

Processes this script starts are stopped by their PID.

    .venv/bin/python bench/widget_size.py
    .venv/bin/python bench/widget_size.py --runs 40 --json /tmp/widget.json
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from benchkit import machine_line, percentile, seed_demo, serve_portico, settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
COMPETITORS = [("flowise-embed", "dist/web.js"), ("@typebot.io/js", "dist/web.js")]
LOADER_GOAL = 4 * 1024
TOTAL_GOAL = 25 * 1024
BUBBLE_GOAL_MS = 100.0


def gz(data: bytes, level: int) -> int:
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def gnu_gzip(data: bytes) -> int | None:
    """`gzip -9 -n` (GNU gzip: its own deflate, no file name or time in the header), if installed."""
    program = shutil.which("gzip")
    if program is None:
        return None
    return len(subprocess.run([program, "-9", "-n", "-c"], input=data, capture_output=True, check=True).stdout)


# --- servers ---------------------------------------------------------------------------------------


@dataclass
class Portico:
    url: str
    widget_id: str  # the demo assistant's; the embed code names it, not the public id (docs/design.md)


@contextmanager
def start_portico(workdir: Path) -> Iterator[Portico]:
    """`portico serve` on SQLite in a temporary data directory, seeded with `portico demo`."""
    config = settings(workdir / "data")
    demo = seed_demo(config, workdir / "server.log")
    with serve_portico("portico", config, workdir / "server.log") as server:
        mine = httpx.get(f"{server.base_url}/api/v1/assistants", headers={"Authorization": f"Bearer {demo.token}"})
        widget_id = next(a["widget_id"] for a in mine.json()["items"] if a["public_id"] == demo.public_id)
        yield Portico(server.base_url, widget_id)


class HostSite:
    """The customer's website: serves `pages` (path -> HTML) on another loopback port."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages.get(urlsplit(self.path).path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


ARTICLE = (
    "<main><h1>Riverside news</h1>"
    + "".join(f"<p>Paragraph {i}: the town council met on Tuesday to discuss the new bridge.</p>" for i in range(1, 11))
    + "</main>"
)
WATCH = """<script>
window.__t0 = performance.now();
addEventListener('load', () => { window.__load = performance.now(); });
new MutationObserver((records, observer) => {
  if (!document.querySelector('[data-portico-widget]')) return;
  observer.disconnect();
  window.__added = performance.now();
  requestAnimationFrame(() => { window.__t1 = performance.now(); });
}).observe(document.documentElement, { childList: true, subtree: true });
</script>"""


def host_page(body: str) -> str:
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head><body>{body}</body></html>'


# --- measurements ----------------------------------------------------------------------------------


async def frame_assets(browser, portico: Portico, host: HostSite) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every response from Portico's origin while the host page loads and the widget opens."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r) if r.url.startswith(portico.url) else None)
    await page.goto(f"{host.origin}/open")
    await page.evaluate("() => Portico.open()")
    deadline = time.monotonic() + 20
    frame = None
    while frame is None or not await frame.locator("#log li.msg").count():
        frame = next((f for f in page.frames if f"/c/{portico.widget_id}?embed=1" in f.url), None)
        if time.monotonic() > deadline:
            raise SystemExit("the widget's frame did not show the greeting within 20 s")
        await page.wait_for_timeout(50)
    await page.wait_for_load_state("networkidle")
    assets = []
    for response in responses:
        body = await response.body()
        url = urlsplit(response.url)
        assets.append(
            {
                "request": f"{response.request.method} {url.path}" + (f"?{url.query}" if url.query else ""),
                "status": response.status,
                "type": (await response.header_value("content-type") or "").split(";")[0],
                "encoding": await response.header_value("content-encoding") or "none",
                "raw": len(body),
                "gzip6": gz(body, 6),
                "gzip9": gz(body, 9),
                "gnu9": gnu_gzip(body),
            }
        )
    await context.close()
    return assets


async def bubble_times(browser, host: HostSite, runs: int) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    """Script tag -> visible bubble, cold (new context each run) and warm (reloads in one context)."""

    async def once(page, go) -> dict:  # type: ignore[no-untyped-def]
        await go()
        await page.wait_for_function("() => window.__t1 !== undefined", timeout=20_000)
        return await page.evaluate(
            """() => {
                const loader = performance.getEntriesByType('resource').find(e => e.name.includes('/widget.js'));
                return { bubble: __t1 - __t0, added: __added - __t0, load: __load - __t0,
                         loader: loader ? loader.responseEnd - loader.startTime : null,
                         transfer: loader ? loader.transferSize : null };
            }"""
        )

    results: dict[str, list[dict]] = {"cold": [], "warm": []}
    url = f"{host.origin}/timing"
    for _ in range(runs):
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        results["cold"].append(await once(page, lambda page=page: page.goto(url)))
        await context.close()
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(url)  # fills the cache
    for _ in range(runs):
        results["warm"].append(await once(page, lambda: page.goto(url)))
    await context.close()
    return results


def competitors(workdir: Path) -> list[dict]:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed: it is needed to fetch the competitors' packages")
    found = []
    for package, path in COMPETITORS:
        done = subprocess.run(
            [npm, "pack", package, "--json", "--pack-destination", str(workdir)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"`npm pack {package}` failed:\n{done.stderr[-2000:]}")
        info = json.loads(done.stdout)[0]
        with tarfile.open(workdir / info["filename"]) as tar:
            member = tar.extractfile(f"package/{path}")
            if member is None:
                raise SystemExit(f"{package} {info['version']} has no {path}")
            body = member.read()
        found.append(
            {
                "package": package,
                "version": info["version"],
                "file": path,
                "raw": len(body),
                "gzip6": gz(body, 6),
                "gzip9": gz(body, 9),
                "gnu9": gnu_gzip(body),
            }
        )
    return found


def machine() -> str:
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    return f"{machine_line()}, {chromium}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


# --- report ----------------------------------------------------------------------------------------


def num(n: float | None) -> str:
    return "-" if n is None else f"{n:,.0f}"


SIZES = ("raw", "gzip6", "gzip9", "gnu9")


def size_row(name: str, width: int, row: dict, status: object = "") -> str:
    return f"{name:<{width}} {status!s:>6} " + " ".join(f"{num(row[k]):>10}" for k in SIZES)


def report(assets: list[dict], rivals: list[dict], times: dict[str, list[dict]]) -> tuple[str, dict]:
    total_name = "loader + open frame (all of the above)"
    width = max(len(x) for x in [total_name] + [a["request"] for a in assets]) + 2
    header = f"{'what':<{width}} {'status':>6} " + " ".join(
        f"{h:>10}" for h in ("raw B", "zlib -6 B", "zlib -9 B", "gzip -9 B")
    )
    lines = [
        "Sizes in bytes. zlib -6/-9: Python's gzip module (level 6 is gzip's and zlib's default);",
        "gzip -9: GNU gzip -9 -n (`gzip -9 file` adds the file name: +7 bytes for web.js).",
        "",
    ]
    lines += [
        "Portico: every response from its origin (host page loaded, widget opened, greeting shown)",
        header,
        "-" * len(header),
    ]
    lines += [size_row(a["request"], width, a, a["status"]) for a in assets]
    total = {k: None if any(a[k] is None for a in assets) else sum(a[k] for a in assets) for k in SIZES}
    loader = next(a for a in assets if a["request"].startswith("GET /widget.js"))
    lines.append(size_row(total_name, width, total))
    lines += ["", "Published embed scripts (npm pack <package>, latest version)", header, "-" * len(header)]
    for r in rivals:
        ratio = f"  {r['gzip9'] / total['gzip9']:.0f}x Portico's loader + frame, {r['gzip9'] / loader['gzip9']:.0f}x its loader"
        lines.append(size_row(f"{r['package']} {r['version']} {r['file']}", width, r) + ratio)

    lines += [
        "",
        "Script tag -> visible bubble, ms: performance.now() in an inline script before the tag, to the first",
        "animation frame after the widget's element is added (the frame that paints it).",
        f"{'runs':<6} {'n':>3} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}   medians: load event / element added"
        " (ms after the tag), loader download (request to response end)",
    ]
    summary: dict[str, dict] = {}
    for kind, runs in times.items():
        bubble = [r["bubble"] for r in runs]
        med = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in ("load", "added", "loader")}
        summary[kind] = {
            "n": len(bubble),
            "median": statistics.median(bubble),
            "p95": percentile(bubble, 95),
            "min": min(bubble),
            "max": max(bubble),
            **{f"{k}_median": v for k, v in med.items()},
        }
        x = summary[kind]
        lines.append(
            f"{kind:<6} {x['n']:>3} {x['median']:>8.1f} {x['p95']:>8.1f} {x['min']:>8.1f} {x['max']:>8.1f}"
            f"   {med['load']:.1f} / {med['added']:.1f} / {med['loader']:.1f}"
        )

    def worst(row: dict) -> int:
        return max(row[k] for k in ("gzip6", "gzip9", "gnu9") if row[k] is not None)

    goals = [
        (
            "loader <= 4 KB gzipped",
            worst(loader) <= LOADER_GOAL,
            f"{worst(loader):,} B at most (limit {LOADER_GOAL:,} B)",
        ),
        (
            "loader + open frame <= 25 KB gzipped",
            worst(total) <= TOTAL_GOAL,
            f"{worst(total):,} B at most (limit {TOTAL_GOAL:,} B)",
        ),
        (
            "script tag -> visible bubble < 100 ms (median, cold)",
            summary["cold"]["median"] < BUBBLE_GOAL_MS,
            f"{summary['cold']['median']:.1f} ms median, {summary['cold']['p95']:.1f} ms p95",
        ),
    ]
    lines += ["", "Goals (sizes: the largest of the three gzip figures)"]
    lines += [f"  {'MET    ' if met else 'NOT MET'}  {name}: {detail}" for name, met, detail in goals]
    data = {
        "assets": assets,
        "total": total,
        "competitors": rivals,
        "bubble_ms": summary,
        "goals": [{"goal": g, "met": m, "detail": d} for g, m, d in goals],
    }
    return "\n".join(lines), data


async def main_async(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n{machine()}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="portico-widget-bench-") as tmp:
        workdir = Path(tmp)
        rivals = competitors(workdir)
        host = HostSite()
        try:
            with start_portico(workdir) as portico:
                tag = f'<script src="{portico.url}/widget.js" data-assistant="{portico.widget_id}" async></script>'
                host.pages["/open"] = host_page(ARTICLE + tag)
                host.pages["/timing"] = host_page(ARTICLE + WATCH + tag)
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    try:
                        assets = await frame_assets(browser, portico, host)
                        times = await bubble_times(browser, host, args.runs)
                    finally:
                        await browser.close()
        finally:
            host.close()
    text, data = report(assets, rivals, times)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({**data, "bubble_runs": times}, indent=2))
    return 0 if all(g["met"] for g in data["goals"]) else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="bubble timings per kind (cold, warm); default 20")
    parser.add_argument("--json", help="also write the figures to this file")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
