"""The widget in a real browser: a host page on another origin embeds Portico with the loader.

Each test starts a real `portico serve` on its database (SQLite and PostgreSQL, like every
database test), one or two host websites (`HostSite`: an http.server on another loopback port,
serving the HTML each test writes) and Chromium (tests/browser.py). The frame's origin is
Portico's, the host page's is another. Owners act through the in-process app (`alice`), which
shares the database with the server.

Finding the widget: it lives in a CLOSED shadow root, and Playwright's selectors (CSS,
get_by_role, get_by_label, aria snapshots) pierce open shadow roots only: they find nothing there
(`page.get_by_role("button", name=re.compile("Open chat"))` counts 0). Chromium's accessibility
tree does include closed shadow roots, so `ClosedWidget` asks it over CDP
(Accessibility.getFullAXTree) for the widget's buttons by role and accessible name, reads their
states (expanded, focused) from it, gets their boxes (DOM.getBoxModel), their computed styles
(DOM.resolveNode + Runtime.callFunctionOn) and clicks them with the real mouse at their centre,
which also proves nothing of the host page covers them there. The chat frame is reached through
`page.frames` (Playwright lists every frame, wherever its element is) and its element through
`frame.frame_element()`.

axe-core cannot enter a closed shadow root either: on the host page it sees only the empty host
element. What it would check in the bubble is checked through the accessibility tree instead
(test 4): role and name, expanded state, target size, icon contrast and a visible focus outline.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from portico.vocabulary import END_MESSAGES, EndReason
from tests.browser import browser, page_errors, run_axe, screenshot, serious  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of

WAIT = 10  # seconds; generous for a loaded machine, passing runs never wait this long
expect.set_options(timeout=WAIT * 1000)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 400, "height": 780}

LIBRARY_KNOWLEDGE = """# Opening hours
The library is open from nine in the morning until five in the evening on weekdays, \
and from ten until two on Saturdays.

# Parking
Visitors park for free in the car park behind the building. The entrance is on Mill Street.
"""
MUSEUM_KNOWLEDGE = """# Tickets
A day ticket to the museum costs eight euros; children under twelve go in free.

# Cloakroom
Coats and bags go in the cloakroom by the east stairs, free of charge.
"""
LIBRARY_GREETING = "Hello! Ask me about opening hours or parking."
MUSEUM_GREETING = "Welcome to the museum. Ask me about tickets."
SATURDAY = "from ten until two on Saturdays"
MILL_STREET = "The entrance is on Mill Street."
EIGHT_EUROS = "costs eight euros"
STREAMED = "The library opens from ten until two on Saturdays, and the car park is free for every visitor."
OFFLINE = re.compile(r"This assistant is offline right now\.")
ENDED_BY_GUEST = END_MESSAGES[EndReason.GUEST]

# Runs in every frame before its own scripts. On the host page: records the widget's window
# events. In Portico's frame: snapshots of the reply while it is being streamed.
WATCH = """
if (location.pathname.indexOf('/c/') === 0) {
  window.__stream = [];
  new MutationObserver(() => {
    const typing = document.querySelector('#log li.msg.assistant.typing');
    if (typing) window.__stream.push({ length: typing.lastChild.textContent.length, at: performance.now() });
  }).observe(document, { subtree: true, childList: true, characterData: true });
} else {
  window.__events = [];
  ['session-start', 'session-end', 'open', 'close'].forEach(name =>
    window.addEventListener('portico:' + name, e => window.__events.push({ type: name, detail: e.detail })));
}
"""


# --- servers -------------------------------------------------------------------------------------


@pytest.fixture
def db_name(settings) -> str:
    return "sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def server(shared_server, app) -> str:
    return shared_server().url


class HostSite:
    """Someone else's website on its own loopback port: serves the pages a test puts in `pages`."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                found = site.pages.get(urlsplit(self.path).path)
                body = (found[1] if found else "not found").encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", found[0] if found else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def page(self, path: str, body: str, *, head: str = "") -> str:
        self.pages[path] = (
            "text/html; charset=utf-8",
            f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Host page</title>{head}</head><body>{body}</body></html>",
        )
        return self.origin + path

    def file(self, path: str, content_type: str, body: str) -> None:
        self.pages[path] = (content_type, body)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def host_sites() -> Iterator[Callable[[], HostSite]]:
    sites: list[HostSite] = []

    def make() -> HostSite:
        sites.append(HostSite())
        return sites[-1]

    yield make
    for site in sites:
        site.close()


class SlowModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat-completions server streaming STREAMED a word every 25 ms."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"id": "stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}
        words = re.findall(r"\S+\s*", STREAMED)
        for word in words:
            delta = {**chunk, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(delta)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.025)
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
        self.wfile.write(f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_model() -> Iterator[str]:
    model = ThreadingHTTPServer(("127.0.0.1", 0), SlowModel)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{model.server_address[1]}/v1"
    finally:
        model.shutdown()
        model.server_close()


def widget_tag(server: str, assistant: dict, **data: str | None) -> str:
    """The snippet the Publish page gives owners, with data-* options (None: a bare attribute)."""
    options = "".join(f" data-{k.replace('_', '-')}" + ("" if v is None else f'="{v}"') for k, v in data.items())
    return f'<script src="{server}/widget.js" data-assistant="{assistant["widget_id"]}"{options} async></script>'


ARTICLE = (
    "<main><h1>Riverside news</h1>"
    + "".join(
        f"<p>Paragraph {i}: the town council met on Tuesday to discuss the new bridge, the market and the park.</p>"
        for i in range(1, 30)
    )
    + "</main>"
)


# --- the widget through the accessibility tree -----------------------------------------------------


@dataclass
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    def overlaps(self, other: Box) -> bool:
        return not (
            self.x + self.width <= other.x
            or other.x + other.width <= self.x
            or self.y + self.height <= other.y
            or other.y + other.height <= self.y
        )


class ClosedWidget:
    """The widgets' buttons in their closed shadow roots, through Chromium's accessibility tree."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.cdp = None

    async def start(self) -> ClosedWidget:
        self.cdp = await self.page.context.new_cdp_session(self.page)
        await self.cdp.send("DOM.enable")  # type: ignore[attr-defined]
        await self.cdp.send("Accessibility.enable")
        return self

    async def nodes(self, role: str, name: str | re.Pattern) -> list[dict]:
        tree = await self.cdp.send("Accessibility.getFullAXTree")
        found = []
        for node in tree["nodes"]:
            if node.get("ignored") or node.get("role", {}).get("value") != role:
                continue
            label = node.get("name", {}).get("value", "")
            if (name.search(label) if isinstance(name, re.Pattern) else label == name) and node.get("backendDOMNodeId"):
                found.append(node)
        return found

    async def find(self, role: str, name: str | re.Pattern) -> dict:
        """The one node with this role and name, waiting for it to appear."""
        deadline = time.monotonic() + WAIT
        while True:
            found = await self.nodes(role, name)
            if len(found) == 1:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected one {role} named {name!r} in the accessibility tree, found {len(found)}"
                )
            await self.page.wait_for_timeout(50)

    async def gone(self, role: str, name: str | re.Pattern) -> None:
        deadline = time.monotonic() + WAIT
        while await self.nodes(role, name):
            if time.monotonic() > deadline:
                raise AssertionError(f"the {role} named {name!r} is still in the accessibility tree")
            await self.page.wait_for_timeout(50)

    @staticmethod
    def state(node: dict, name: str) -> object:
        return next((p["value"].get("value") for p in node.get("properties", []) if p["name"] == name), None)

    async def wait_state(self, role: str, name: str | re.Pattern, prop: str, value: object) -> dict:
        deadline = time.monotonic() + WAIT
        while True:
            node = await self.find(role, name)
            if self.state(node, prop) == value:
                return node
            if time.monotonic() > deadline:
                raise AssertionError(f"{role} {name!r}: {prop} is {self.state(node, prop)!r}, expected {value!r}")
            await self.page.wait_for_timeout(50)

    async def box(self, node: dict) -> Box:
        model = await self.cdp.send("DOM.getBoxModel", {"backendNodeId": node["backendDOMNodeId"]})
        xs, ys = model["model"]["border"][0::2], model["model"]["border"][1::2]
        return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))

    async def style(self, node: dict, *names: str) -> dict[str, str]:
        """Computed style of a node in the closed shadow root."""
        resolved = await self.cdp.send("DOM.resolveNode", {"backendNodeId": node["backendDOMNodeId"]})
        result = await self.cdp.send(
            "Runtime.callFunctionOn",
            {
                "objectId": resolved["object"]["objectId"],
                "functionDeclaration": "function (names) { const s = getComputedStyle(this);"
                " return Object.fromEntries(names.map(n => [n, s.getPropertyValue(n)])); }",
                "arguments": [{"value": list(names)}],
                "returnByValue": True,
            },
        )
        return result["result"]["value"]

    async def click(self, role: str, name: str | re.Pattern) -> Box:
        box = await self.box(await self.find(role, name))
        await self.page.mouse.click(*box.centre)
        return box

    async def on_top(self, box: Box) -> str | None:
        """What the host page's hit-testing finds at the box's centre: the widget's host element's
        data-portico-widget (a hit inside a shadow root is retargeted to its host), or the tag found."""
        return await self.page.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y);"
            " return e ? (e.getAttribute('data-portico-widget') || e.tagName) : null; }",
            list(box.centre),
        )


def bubble_name(title: str) -> str:
    return f"Open chat: {title}"


async def chat_frame(page, widget_id: str):  # type: ignore[no-untyped-def]
    """The widget's frame for this assistant (whatever it shows), waiting for it to appear."""
    deadline = time.monotonic() + WAIT
    while True:
        for frame in page.frames:
            if f"/c/{widget_id}?embed=1" in frame.url or (frame.parent_frame and frame.url.startswith("chrome-error:")):
                return frame
        if time.monotonic() > deadline:
            raise AssertionError(f"no widget frame for {widget_id}: {[f.url for f in page.frames]}")
        await page.wait_for_timeout(50)


async def panel_box(frame) -> Box | None:  # type: ignore[no-untyped-def]
    """The frame element's box on the host page, or None when the panel is closed."""
    element = await frame.frame_element()
    found = await element.bounding_box()
    return Box(**found) if found and await element.is_visible() else None


async def wait_panel(frame, *, open_: bool) -> Box | None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while True:
        box = await panel_box(frame)
        if (box is not None) == open_:
            return box
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the panel is {'closed' if open_ else 'open'}, expected {'open' if open_ else 'closed'}"
            )
        await frame.page.wait_for_timeout(50)


async def wait_idle(frame, replies: int) -> None:  # type: ignore[no-untyped-def]
    await frame.wait_for_function(
        """n => document.querySelectorAll('#log li.msg.assistant').length === n
                && !document.querySelector('#log li.typing') && !document.getElementById('send').disabled""",
        arg=replies,
    )


async def ask(frame, text: str, replies: int) -> str:  # type: ignore[no-untyped-def]
    # The frame's script runs (the greeting, or the replies so far, are shown) before the guest types:
    # an Enter pressed before it runs is a newline, never sent (seen once under load).
    await wait_idle(frame, replies - 1)
    box = frame.locator("#message")
    await box.fill(text)
    await box.press("Enter")
    await expect(frame.locator("#log li.msg.guest").last).to_contain_text(text)
    await wait_idle(frame, replies)
    return await frame.locator("#log li.msg.assistant").last.evaluate(
        "i => i.querySelector('.text').textContent.trim()"
    )


async def host_events(page, kind: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    events = await page.evaluate("() => window.__events")
    return [e for e in events if kind is None or e["type"] == kind]


async def logs(owner: Person, assistant: dict) -> list[dict]:
    response = await owner.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions")
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def new_page(browser, viewport=DESKTOP, **options):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=viewport, **options)
    await context.add_init_script(WATCH)
    page = await context.new_page()
    return context, page


def relative_luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# 1 ------------------------------------------------------------------------------------------------


async def test_the_bubble_opens_a_streamed_chat_closes_and_reopens_into_the_same_session(
    browser, server, alice: Person, db_name, slow_model: str, host_sites
):
    assistant = await alice.new_assistant(
        name="Riverside Library",
        greeting=LIBRARY_GREETING,
        knowledge=LIBRARY_KNOWLEDGE,
        engine={"type": "openai", "base_url": slow_model, "model": "stub", "api_key": "sk-stub"},
    )
    widget_id = assistant["widget_id"]
    site = host_sites()
    url = site.page("/news", ARTICLE + widget_tag(server, assistant, title="Riverside Library", color="#1f5fbf"))
    context, page = await new_page(browser)
    errors = page_errors(page)
    timeline: list[tuple[str, str]] = []  # requests and the load event, in the order they happened
    page.on("request", lambda r: timeline.append(("request", r.url)))
    page.on("load", lambda _: timeline.append(("load", "")))
    widget = await ClosedWidget(page).start()

    await page.goto(url)
    bubble = await widget.find("button", bubble_name("Riverside Library"))
    assert widget.state(bubble, "expanded") is False
    box = await widget.box(bubble)
    # 56 px round button, 20 px from the bottom-right corner, on top of the page at its centre.
    assert (round(box.width), round(box.height)) == (56, 56)
    assert (round(DESKTOP["width"] - box.x - box.width), round(DESKTOP["height"] - box.y - box.height)) == (20, 20)
    assert await widget.on_top(box) == widget_id

    # Nothing from Portico before the host page's load event but the loader itself (the script
    # tag), then only its one question (may the bubble show here?), and nothing more until the
    # bubble is used: the frame loads on the first open.
    load_at = timeline.index(("load", ""))
    ours = [(i, urlsplit(u).path) for i, (kind, u) in enumerate(timeline) if kind == "request" and u.startswith(server)]
    # (The loader's load listener runs before the one that marks the timeline, so its question may
    # be listed just before the mark.)
    assert ours[0] < (load_at, "") and [path for _, path in ours] == ["/widget.js", "/widget/check"], timeline

    # Open with the mouse: the panel shows the chat frame, from Portico's origin.
    await widget.click("button", bubble_name("Riverside Library"))
    frame = await chat_frame(page, widget_id)
    panel = await wait_panel(frame, open_=True)
    assert panel is not None and (round(panel.width), round(panel.height)) == (380, 600)
    assert (
        urlsplit(frame.url).netloc == urlsplit(server).netloc
        and f"#o={site.origin.replace(':', '%3A').replace('/', '%2F')}" in frame.url
    )
    await widget.wait_state("button", bubble_name("Riverside Library"), "expanded", True)
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(LIBRARY_GREETING)
    await expect(frame.locator("#name")).to_have_text("Riverside Library")
    assert [e["detail"] for e in await host_events(page, "open")] == [{"assistant": widget_id}]
    # The × sits over the frame's header: it must not cover what the header shows.
    close_box = await widget.box(await widget.find("button", "Close chat"))
    for selector in ("#name", "#description"):
        found = await frame.locator(selector).bounding_box()
        assert found and not close_box.overlaps(Box(**found)), f"the close button covers {selector}"

    # The host page listens through Portico.on as well as window events.
    await page.evaluate("() => { window.__on = []; Portico.on('session-start', d => window.__on.push(d)); }")
    reply = await ask(frame, "When are you open on Saturdays?", replies=2)
    assert reply == STREAMED
    stream = await frame.evaluate("() => window.__stream")
    partial = [s for s in stream if 0 < s["length"] < len(reply)]
    assert len({s["length"] for s in partial}) >= 2, f"the reply did not arrive in pieces: {stream}"
    assert partial[-1]["at"] - partial[0]["at"] > 50, f"the pieces arrived together: {stream}"

    (started,) = await host_events(page, "session-start")
    session_id = started["detail"]["session_id"]
    assert started["detail"]["assistant"] == widget_id and isinstance(session_id, int)
    assert await page.evaluate("() => window.__on") == [started["detail"]]
    (logged,) = await logs(alice, assistant)
    assert (logged["id"], logged["channel"], logged["user"]) == (session_id, "widget", "Anonymous")
    end_box = await frame.locator("#end").bounding_box()
    assert end_box and not close_box.overlaps(Box(**end_box)), "the close button covers the End button"
    await screenshot(page, f"widget-open-desktop-{db_name}.png")

    # Escape in the frame closes the panel and gives focus back to the bubble.
    await frame.locator("#message").focus()
    await page.keyboard.press("Escape")
    await wait_panel(frame, open_=False)
    await widget.wait_state("button", bubble_name("Riverside Library"), "focused", True)
    await widget.wait_state("button", bubble_name("Riverside Library"), "expanded", False)
    await widget.gone("button", "Close chat")
    assert len(await host_events(page, "close")) == 1

    # Reopen with the keyboard (the bubble has focus): same frame, same conversation, same session.
    frames_before = len(page.frames)
    await page.keyboard.press("Enter")
    await wait_panel(frame, open_=True)
    assert len(page.frames) == frames_before
    await expect(frame.locator("#log li.msg.guest")).to_have_count(1)
    assert await ask(frame, "And where do I park?", replies=3) == STREAMED
    # Focus went into the frame on opening, so Escape there closes straight away.
    await page.keyboard.press("Escape")
    await wait_panel(frame, open_=False)

    # Portico.open() / Portico.close() from the host page; the × closes too.
    await page.evaluate("() => Portico.open()")
    await wait_panel(frame, open_=True)
    await page.evaluate("() => Portico.close()")
    await wait_panel(frame, open_=False)
    await page.evaluate(f"() => Portico.open({json.dumps(widget_id)})")
    await wait_panel(frame, open_=True)
    await widget.click("button", "Close chat")
    await wait_panel(frame, open_=False)
    assert [e["type"] for e in await host_events(page) if e["type"] in ("open", "close")] == ["open", "close"] * 4

    # A reload of the host page comes back to the same session in the frame.
    await page.reload()
    await widget.click("button", bubble_name("Riverside Library"))
    frame = await chat_frame(page, widget_id)
    await wait_panel(frame, open_=True)
    await expect(frame.locator("#log li.msg.guest")).to_have_count(2)
    await expect(frame.locator("#end")).to_be_visible()
    assert len(await logs(alice, assistant)) == 1, "reopening started another session"

    # Ending the conversation tells the host page.
    await frame.locator("#end").click()
    await expect(frame.locator("#notice")).to_have_text(ENDED_BY_GUEST)
    (ended,) = await host_events(page, "session-end")
    assert ended["detail"] == {"assistant": widget_id, "session_id": session_id, "reason": "guest"}
    errors.assert_none()
    await context.close()


# 2 ------------------------------------------------------------------------------------------------


async def test_a_private_key_attributes_the_session_and_allowed_domains_block_other_websites(
    browser, server, alice: Person, db_name, host_sites
):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE, share="private"
    )
    (link,) = await alice.new_links(assistant["id"], 3)
    key = key_of(link)
    allowed, other = host_sites(), host_sites()
    patched = await alice.request(
        "PATCH", f"/api/v1/assistants/{assistant['id']}", json={"allowed_domains": [allowed.origin]}
    )
    assert patched.status_code == 200 and patched.json()["allowed_domains"] == [allowed.origin]
    snippet = widget_tag(server, assistant, key=key, title="Riverside Library", open=None)

    # A website that is not on the list: the loader asks first (one small request), shows no bubble
    # at all, and tells the site's developer why in one console line (issue 21, item 8).
    context, page = await new_page(browser)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(urlsplit(r.url).path) if r.url.startswith(server) else None)
    async with page.expect_console_message(lambda m: "Portico widget" in m.text) as said:
        await page.goto(other.page("/", ARTICLE + snippet))
    assert (await said.value).type == "warning"
    assert f"this website ({other.origin}) is not among the assistant's allowed websites" in (await said.value).text
    await page.wait_for_timeout(200)  # anything the loader would add comes right after its answer
    assert await page.locator("[data-portico-widget]").count() == 0
    assert asked == ["/widget.js", "/widget/check"], asked
    await screenshot(page, f"widget-blocked-{db_name}.png")
    await context.close()
    # A session start claiming that origin (as a copied frame would send) is refused too.
    async with httpx.AsyncClient(base_url=server) as http:
        refused = await http.post(
            "/api/v1/chat/sessions", json={"key": key, "channel": "widget", "origin": other.origin}
        )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "origin_not_allowed")

    # The allowed website: opens by itself (data-open), chats, and the key attributes the session.
    context, page = await new_page(browser)
    errors = page_errors(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    widget = await ClosedWidget(page).start()
    await page.goto(allowed.page("/", ARTICLE + snippet))
    frame = await chat_frame(page, assistant["widget_id"])
    await wait_panel(frame, open_=True)
    await widget.wait_state("button", bubble_name("Riverside Library"), "expanded", True)
    await expect(frame.locator("#uses")).to_have_text("Your link has 3 sessions left.")
    assert SATURDAY in await ask(frame, "When are you open on Saturdays?", replies=2)
    (started,) = await host_events(page, "session-start")
    (logged,) = await logs(alice, assistant)
    assert (logged["id"], logged["user"], logged["channel"]) == (
        started["detail"]["session_id"],
        link["name"],
        "widget",
    )
    links = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"]
    assert links[0]["sessions_used"] == 1, "the refused start must not have taken a use"
    # The key travels in the fragment and request bodies, never in a URL sent to a server.
    assert requests and all(key not in u.split("#", 1)[0] for u in requests)
    errors.assert_none()
    await context.close()


# 3 ------------------------------------------------------------------------------------------------

HOSTILE_CSS = """
* { all: unset; }
html, body { display: block; font: 40px/1.6 serif; color: #222; background: #fdf6e3; }
main, p, h1 { display: block; margin: 12px; }
div, iframe, button, section { position: relative !important; z-index: 1 !important; transform: scale(1.02) !important;
  opacity: .98 !important; box-sizing: content-box !important; border: 5px solid red !important; }
.cookie { position: fixed !important; left: 0; right: 0; bottom: 0; height: 140px; z-index: 2147483647 !important;
  background: rgba(30, 30, 30, .9); color: #fff; display: block; }
.chatbot-of-an-ad { position: fixed !important; right: 0; bottom: 0; width: 460px; height: 700px;
  z-index: 2147483646 !important; background: rgba(200, 0, 0, .5); display: block; }
"""


async def test_two_widgets_on_a_hostile_page_work_independently_and_offline_shows_in_the_panel(
    browser, server, alice: Person, db_name, host_sites
):
    library = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE
    )
    museum = await alice.new_assistant(name="City Museum", greeting=MUSEUM_GREETING, knowledge=MUSEUM_KNOWLEDGE)
    site = host_sites()
    site.file("/host.css", "text/css", HOSTILE_CSS)
    # The banners come before the widgets in the page, with the highest z-index there is.
    body = (
        '<section class="chatbot-of-an-ad">An advert</section><section class="cookie">We use cookies.</section>'
        + ARTICLE
        + widget_tag(server, library, title="Riverside Library", color="#0b6e4f")
        + widget_tag(server, museum, title="City Museum", position="bottom-left", color="purple")
    )
    # A strict Content-Security-Policy, as careful websites have: Portico's script, its question
    # (connect-src) and frame are allowed, inline styles are not (the widget's own styles must not need them).
    csp = f"default-src 'self'; script-src 'self' {server}; connect-src {server}; frame-src {server}; style-src 'self'"
    head = f'<meta http-equiv="Content-Security-Policy" content="{csp}"><link rel="stylesheet" href="/host.css">'
    url = site.page("/", body, head=head)
    context, page = await new_page(browser)
    errors = page_errors(page)
    widget = await ClosedWidget(page).start()
    await page.goto(url)

    boxes = {}
    for title, assistant, colour in (
        ("Riverside Library", library, "rgb(11, 110, 79)"),
        ("City Museum", museum, "rgb(128, 0, 128)"),
    ):
        node = await widget.find("button", bubble_name(title))
        boxes[title] = box = await widget.box(node)
        assert (round(box.width), round(box.height)) == (56, 56), f"{title}: the host's CSS changed the bubble: {box}"
        assert round(DESKTOP["height"] - box.y - box.height) == 20
        assert (await widget.style(node, "background-color"))["background-color"] == colour
        assert await widget.on_top(box) == assistant["widget_id"], f"{title}: the host page covers the bubble"
    assert round(boxes["Riverside Library"].x + 56) == DESKTOP["width"] - 20 and round(boxes["City Museum"].x) == 20

    # Open both with the mouse, through the banners' area.
    await widget.click("button", bubble_name("Riverside Library"))
    await widget.click("button", bubble_name("City Museum"))
    frames = {
        "library": await chat_frame(page, library["widget_id"]),
        "museum": await chat_frame(page, museum["widget_id"]),
    }
    right, left = await wait_panel(frames["library"], open_=True), await wait_panel(frames["museum"], open_=True)
    assert (
        right
        and left
        and (round(right.width), round(right.height)) == (380, 600) == (round(left.width), round(left.height))
    )
    assert round(left.x) == 20 and round(right.x + right.width) == DESKTOP["width"] - 20
    for frame_box, assistant in ((right, library), (left, museum)):
        assert await widget.on_top(frame_box) == assistant["widget_id"], "the host page covers the panel"
    # The × of the left panel is on the right too, out of the way of the avatar.
    closes = [await widget.box(n) for n in await widget.nodes("button", "Close chat")]
    assert sorted(round(b.x + b.width) for b in closes) == [400 - 8, DESKTOP["width"] - 20 - 8]

    assert SATURDAY in await ask(frames["library"], "When are you open on Saturdays?", replies=2)
    assert EIGHT_EUROS in await ask(frames["museum"], "How much is a ticket?", replies=2)
    await expect(frames["library"].locator("#log")).not_to_contain_text("euros")
    await expect(frames["museum"].locator("#log")).not_to_contain_text("Saturdays")
    started = {e["detail"]["assistant"]: e["detail"]["session_id"] for e in await host_events(page, "session-start")}
    assert [s["id"] for s in await logs(alice, library)] == [started[library["widget_id"]]]
    assert [s["id"] for s in await logs(alice, museum)] == [started[museum["widget_id"]]]
    await screenshot(page, f"widget-two-hostile-{db_name}.png")

    # One API for both, addressed by assistant; Escape in one frame closes only that one.
    await page.evaluate(f"() => Portico.close({json.dumps(library['widget_id'])})")
    await wait_panel(frames["library"], open_=False)
    assert await panel_box(frames["museum"]) is not None
    await frames["museum"].locator("#message").focus()
    await page.keyboard.press("Escape")
    await wait_panel(frames["museum"], open_=False)
    await page.evaluate(f"() => Portico.open({json.dumps(museum['widget_id'])})")
    await wait_panel(frames["museum"], open_=True)
    assert await panel_box(frames["library"]) is None

    # The owner takes the museum offline: the next message says so inside its panel...
    response = await alice.request("PUT", f"/api/v1/assistants/{museum['id']}/status", json={"status": "offline"})
    assert response.status_code == 200, response.text
    await frames["museum"].locator("#message").fill("Is there a cloakroom?")
    await frames["museum"].locator("#message").press("Enter")
    await expect(frames["museum"].locator("#notice")).to_contain_text(OFFLINE)
    await expect(frames["museum"].locator("#message")).to_have_value("Is there a cloakroom?")  # kept, not lost
    await expect(frames["museum"].locator("#send")).to_be_disabled()
    # ...and so does the panel opened afresh, while the library's still chats.
    await page.reload()
    await widget.click("button", bubble_name("City Museum"))
    museum_frame = await chat_frame(page, museum["widget_id"])
    await wait_panel(museum_frame, open_=True)
    await expect(museum_frame.locator("#notice")).to_have_text(OFFLINE)
    await expect(museum_frame.locator("#composer")).to_be_hidden()
    assert "assistant_offline" not in await museum_frame.locator("body").inner_text()
    await screenshot(page, f"widget-offline-{db_name}.png")
    await widget.click("button", bubble_name("Riverside Library"))
    library_frame = await chat_frame(page, library["widget_id"])
    await wait_panel(library_frame, open_=True)
    await expect(library_frame.locator("#log li.msg.guest")).to_have_count(1)  # resumed
    assert MILL_STREET in await ask(library_frame, "Where do I park?", replies=3)
    errors.assert_none()
    await context.close()


# 4 ------------------------------------------------------------------------------------------------


async def test_on_a_phone_the_panel_is_full_screen_and_the_bubble_is_accessible(
    browser, server, alice: Person, db_name, host_sites
):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE
    )
    site = host_sites()
    url = site.page("/", ARTICLE + widget_tag(server, assistant, title="Riverside Library"))
    # bypass_csp lets axe run inside Portico's frame; allowed domains are empty here.
    context, page = await new_page(
        browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, bypass_csp=True
    )
    errors = page_errors(page)
    widget = await ClosedWidget(page).start()
    await page.goto(url)
    name = bubble_name("Riverside Library")
    bubble = await widget.find("button", name)
    box = await widget.box(bubble)
    assert (round(box.width), round(box.height)) == (56, 56)
    assert round(box.x + box.width) == PHONE["width"] - 20

    # What axe cannot see (it does not enter closed shadow roots), checked here instead: the
    # bubble is a button with a name and an expanded state, a 56 px target, its icon contrasts
    # with its background, and keyboard focus shows a visible outline.
    colours = await widget.style(bubble, "background-color", "color", "outline-style", "outline-width")
    assert contrast(colours["background-color"], colours["color"]) >= 4.5, colours
    assert widget.state(bubble, "expanded") is False
    await page.keyboard.press("Tab")  # the article has no links: the bubble is the first stop
    bubble = await widget.wait_state("button", name, "focused", True)
    focused = await widget.style(bubble, "outline-style", "outline-width")
    assert focused["outline-style"] == "solid" and focused["outline-width"] == "3px", focused

    await page.touchscreen.tap(*box.centre)
    frame = await chat_frame(page, assistant["widget_id"])
    panel = await wait_panel(frame, open_=True)
    assert panel is not None
    assert (round(panel.x), round(panel.y), round(panel.width), round(panel.height)) == (
        0,
        0,
        PHONE["width"],
        PHONE["height"],
    )
    dialog = await widget.find("dialog", "Riverside Library")
    assert dialog is not None
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(LIBRARY_GREETING)
    await frame.locator("#message").tap()
    assert MILL_STREET in await ask(frame, "Where do I park?", replies=2)
    await expect(frame.locator("#composer")).to_be_in_viewport()
    width = await frame.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the chat frame is {width}px wide on a {PHONE['width']}px screen"
    close = await widget.box(await widget.find("button", "Close chat"))
    assert close.width >= 24 and close.height >= 24
    for selector in ("#name", "#end"):
        found = await frame.locator(selector).bounding_box()
        assert found and not close.overlaps(Box(**found)), f"the close button covers {selector}"
    await screenshot(page, f"widget-phone-{db_name}.png")

    found = serious(await run_axe(page, "host page, widget open"))
    found += serious(await run_axe(frame, "widget frame, after a reply"))
    assert not found, "axe found serious or critical problems (printed above): " + ", ".join(v["id"] for v in found)

    await page.touchscreen.tap(*close.centre)
    await wait_panel(frame, open_=False)
    await widget.wait_state("button", name, "expanded", False)
    errors.assert_none()
    await context.close()


# 5 ------------------------------------------------------------------------------------------------


async def test_a_refused_widget_says_why_in_the_servers_words_and_counts_once_per_host_page_load(
    browser, server, alice: Person, host_sites
):
    assistant = await alice.new_assistant(name="Riverside Library", greeting=LIBRARY_GREETING, share="private")
    (link,) = await alice.new_links(assistant["id"], 3)
    deleted = await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    assert deleted.status_code == 204, deleted.text
    key = key_of(link)
    async with httpx.AsyncClient(base_url=server) as http:
        said = (await http.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"], "key": key})).json()
    assert said["error"]["code"] == "link_revoked"
    host = host_sites().page(
        "/", ARTICLE + widget_tag(server, assistant, key=key, title="Riverside Library", open=None)
    )

    context, page = await new_page(browser)
    errors = page_errors(page)
    for load in (1, 2):
        async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/chat/lookup") as looked_up:
            await (page.goto(host) if load == 1 else page.reload())
        assert json.loads((await looked_up.value).request.post_data or "{}").get("count") is True
        frame = await chat_frame(page, assistant["widget_id"])
        await wait_panel(frame, open_=True)
        await expect(frame.locator("#notice")).to_have_text(said["error"]["message"])
        await expect(frame.locator("#composer")).to_be_hidden()
        metrics = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics")).json()
        assert {code: n for code, n in metrics["refusals"].items() if n} == {"link_revoked": load}
    assert await host_events(page, "session-start") == []
    assert await logs(alice, assistant) == []
    errors.assert_none()
    await context.close()
