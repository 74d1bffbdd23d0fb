"""Shared helpers for browser tests (chat page now; dashboard and widget later).

- Chromium is the system one at /usr/bin/chromium, never a downloaded build. Without it the
  browser tests skip with a clear reason, except under CI=true, where they fail.
- axe-core comes from the npm registry into tests/.node/ (git-ignored) the first time it is
  needed; without npm or the network the accessibility tests skip, or fail under CI=true.
- Screenshots go to tests/artifacts/ (git-ignored).

Use in a test module:

    from tests.browser import browser, page_errors, run_axe, screenshot  # noqa: F401  (fixtures)

One Chromium per pytest-xdist worker (`chromium`, session-scoped: every test and fixture runs in the
worker's one event loop, pyproject.toml); each test gets `browser`, which opens fresh contexts on it
and closes them after the test, so no cookie, storage or page outlives the test that made it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # the Makefile's `browser-deps` installs it here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TESTS = Path(__file__).parent
ARTIFACTS = TESTS / "artifacts"
NODE_PREFIX = TESTS / ".node"
AXE_JS = NODE_PREFIX / "node_modules" / "axe-core" / "axe.min.js"
AXE_PACKAGE = "axe-core@4"


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true makes the browser tests mandatory.")
    pytest.skip(reason)


def chromium_problem() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"Chromium is not installed at {CHROMIUM} (install it with `apt-get install chromium`, or run `make test`)"
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[dev]')"
    return None


async def launch(playwright):  # type: ignore[no-untyped-def]
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[object]:
    """The worker's Chromium, started on the first browser test and kept until the end."""
    problem = chromium_problem()
    if problem:
        skip_or_fail(problem)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await launch(playwright)
        try:
            yield instance
        finally:
            await instance.close()


class TestBrowser:
    """Chromium as one test sees it: `new_context` and `new_page` as Playwright's Browser, and every
    context the test opened is closed after it."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, instance) -> None:  # type: ignore[no-untyped-def]
        self._instance = instance
        self._contexts: list = []

    async def new_context(self, **options):  # type: ignore[no-untyped-def]
        context = await self._instance.new_context(**options)
        self._contexts.append(context)
        return context

    async def new_page(self, **options):  # type: ignore[no-untyped-def]
        return await (await self.new_context(**options)).new_page()

    def __getattr__(self, name: str) -> object:
        return getattr(self._instance, name)

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()
        self._contexts.clear()


@pytest.fixture
async def browser(chromium) -> AsyncIterator[TestBrowser]:  # type: ignore[no-untyped-def]
    """Fresh contexts on the worker's Chromium; `browser.new_context(...)` as with Playwright's."""
    instance = TestBrowser(chromium)
    try:
        yield instance
    finally:
        await instance.close()


class PageErrors:
    """Uncaught script errors and Content-Security-Policy violations seen by a page."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        # Refused requests (403, 410...) are logged by Chromium as console errors; those are expected.
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.errors.append(f"csp: {message.text}")

    def assert_none(self) -> None:
        assert not self.errors, "the page reported errors:\n" + "\n".join(self.errors)


def page_errors(page) -> PageErrors:  # type: ignore[no-untyped-def]
    return PageErrors(page)


async def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def axe_source() -> str:
    """axe-core's script, installed from the npm registry on first use."""
    if not AXE_JS.exists():
        # pytest-xdist workers may all get here at once: one installs, the others wait for it.
        NODE_PREFIX.mkdir(exist_ok=True)
        with (NODE_PREFIX / "install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _install_axe()
    return AXE_JS.read_text()


def _install_axe() -> None:
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            skip_or_fail("npm is not installed, so axe-core cannot be fetched")
        command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NODE_PREFIX), AXE_PACKAGE]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            skip_or_fail(f"`{' '.join(command)}` took more than 3 minutes")
        if done.returncode != 0 or not AXE_JS.exists():
            skip_or_fail(f"could not install {AXE_PACKAGE} from npm:\n{done.stderr[-2000:]}")


async def run_axe(page, label: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Runs axe-core in the page (its context needs bypass_csp=True) and returns the violations.

    Prints every violation; the caller decides which impacts fail the test.
    """
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(content=axe_source())
    results = await page.evaluate(
        """async () => {
            const r = await axe.run(document, { resultTypes: ['violations'] });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary })),
            }));
        }"""
    )
    for violation in results:
        print(f"axe [{label}] {violation['impact']}: {violation['id']} - {violation['help']}")
        for node in violation["nodes"]:
            print(f"    {json.dumps(node['target'])}: {node['summary']}")
    return results


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]
