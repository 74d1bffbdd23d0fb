"""The chat page in a real browser, against a real `portico serve`, on SQLite.

The tests share the worker's server (`shared_server`, on each test's emptied database) and Chromium
(fresh contexts per test, tests/browser.py); owners act through the in-process app (`alice`), which
shares the database with the server.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from portico.chat.views import NETWORK_MESSAGE
from portico.models import ChatSession
from portico.vocabulary import END_MESSAGES, REFUSAL_MESSAGES, EndReason, Refusal
from tests.browser import browser, page_errors, run_axe, screenshot, serious  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of
from tests.servers import LogSince

KNOWLEDGE = """# Opening hours
The library is open from nine in the morning until five in the evening on weekdays, \
and from ten until two on Saturdays. It is closed on Sundays and public holidays.

# Parking
Visitors park for free in the car park behind the building. The entrance is on Mill Street.

# Returning books
Books can be returned at any time through the slot beside the main door.
"""
GREETING = "Hello! Ask me about opening hours, parking or returning books."
DESCRIPTION = "Answers questions about the Riverside Library."
SATURDAY = "from ten until two on Saturdays"
MILL_STREET = "The entrance is on Mill Street."

ENDED_BY_GUEST = END_MESSAGES[EndReason.GUEST]
REVOKED = REFUSAL_MESSAGES[Refusal.LINK_REVOKED]
EXHAUSTED = REFUSAL_MESSAGES[Refusal.LINK_EXHAUSTED]
STATIC = Path(__file__).parent.parent / "src" / "portico" / "static"
# The page's sentence (chat.html) after an ending that came with a message the server did not take.
KEPT = "Your message was not sent; it is still in the box."

expect.set_options(timeout=10_000)  # generous for a loaded machine; passing runs never wait this long
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# Installed before the page's own script: snapshots of the reply being streamed, one per
# MutationObserver callback (each callback runs after a separate piece of the stream arrived).
WATCH_STREAM = """
window.__stream = [];
new MutationObserver(() => {
  const typing = document.querySelector('#log li.msg.assistant.typing');
  if (typing) window.__stream.push({ length: typing.lastChild.textContent.length, at: performance.now() });
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture
def db_name(settings) -> str:
    return "sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgresql"


# The worker's server on the test's (emptied) database. The access log is on so that a key in a
# request line would show in the server's log.
SERVER_SETTINGS = {"PORTICO_ACCESS_LOG": "true"}


@pytest.fixture
def server(shared_server, app) -> str:
    return shared_server(**SERVER_SETTINGS).url


@pytest.fixture
def server_log(shared_server, app) -> LogSince:
    """The server's log since the test began."""
    return shared_server(**SERVER_SETTINGS).log


class SlowModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat-completions server that quotes, a word every 20 ms, the first
    passage of the reference material Portico puts in the system prompt."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        # The best passage comes first; lines ending in ":" introduce the material.
        blocks = ["\n".join(x for x in b.strip().splitlines() if not x.endswith(":")) for b in system.split("\n\n")]
        words = re.findall(r"\S+\s*", next((b for b in blocks if b), "")) or ["Sorry."]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(data: dict | str) -> None:
            self.wfile.write(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        chunk = {"id": "stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}
        for word in words:
            event({**chunk, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
            time.sleep(0.02)
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
        event({**chunk, "choices": [], "usage": usage})
        event("[DONE]")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_model() -> Iterator[str]:
    model = ThreadingHTTPServer(("127.0.0.1", 0), SlowModel)
    thread = threading.Thread(target=model.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{model.server_address[1]}/v1"
    finally:
        model.shutdown()
        model.server_close()


async def library(owner: Person, **fields: object) -> dict:
    defaults = {"name": "Riverside Library", "description": DESCRIPTION, "greeting": GREETING, "knowledge": KNOWLEDGE}
    return await owner.new_assistant(**{**defaults, **fields})


async def session_count(app) -> int:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as db:
        return (await db.execute(select(func.count()).select_from(ChatSession))).scalar_one()


async def link_state(owner: Person, assistant_id: int, link_id: int) -> dict:
    listed = (await owner.request("GET", f"/api/v1/assistants/{assistant_id}/links")).json()
    return next(link for link in listed["items"] if link["id"] == link_id)


async def refusals(owner: Person, assistant_id: int) -> dict[str, int]:
    """The assistant's "Refusals at the gate" in Metrics, as its owner reads them."""
    response = await owner.request("GET", f"/api/v1/assistants/{assistant_id}/metrics")
    assert response.status_code == 200, response.text
    return {code: n for code, n in response.json()["refusals"].items() if n}


async def server_refusal(server: str, **body: str) -> dict:
    """What the API answers a lookup that counts nothing: the code and the sentence a guest reads."""
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post("/api/v1/chat/lookup", json=body)
    assert response.status_code in (403, 404), response.text
    return response.json()["error"]


def is_lookup(response) -> bool:  # type: ignore[no-untyped-def]
    return urlsplit(response.url).path == "/api/v1/chat/lookup"


async def new_page(browser, viewport=DESKTOP, **options):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=viewport, **options)
    page = await context.new_page()
    return context, page


async def wait_ready(page) -> None:  # type: ignore[no-untyped-def]
    """The lookup (or resume) finished: the greeting is on screen."""
    await expect(page.locator("#log li.msg.assistant").first).to_contain_text(GREETING)


async def wait_idle(page, replies: int) -> None:  # type: ignore[no-untyped-def]
    """`replies` assistant bubbles (greeting included) are complete and the page takes input again."""
    await page.wait_for_function(
        """n => document.querySelectorAll('#log li.msg.assistant').length === n
                && !document.querySelector('#log li.typing') && !document.getElementById('send').disabled""",
        arg=replies,
    )


async def ask(page, text: str, replies: int) -> str:  # type: ignore[no-untyped-def]
    """Types a message, presses Enter, waits for the whole reply and returns it."""
    box = page.locator("#message")
    await box.fill(text)
    await box.press("Enter")
    await expect(page.locator("#log li.msg.guest").last).to_contain_text(text)
    await wait_idle(page, replies)
    return (await texts(page, "assistant"))[-1]


async def texts(page, role: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The bubbles' texts, without the visually hidden "You: " / "Assistant: " before each."""
    return await page.locator(f"#log li.msg.{role}").evaluate_all(
        "items => items.map(i => i.querySelector('.text').textContent.trim())"
    )


# 1 ------------------------------------------------------------------------------------------------


async def test_guest_on_a_public_link_chats_with_a_streamed_reply_reloads_and_ends(
    browser, server, app, alice: Person, db_name, slow_model: str
):
    # The model streams its answer a word at a time, so a reply that is streamed all the way
    # (model -> server -> page) shows on screen in pieces; a buffered one would show whole.
    assistant = await library(
        alice, engine={"type": "openai", "base_url": slow_model, "model": "stub", "api_key": "sk-stub"}
    )
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.add_init_script(WATCH_STREAM)

    await page.goto(f"{server}/c/{assistant['public_id']}")
    await expect(page.locator("#name")).to_have_text("Riverside Library")
    await expect(page.locator("#description")).to_have_text(DESCRIPTION)
    await expect(page).to_have_title("Riverside Library")
    await wait_ready(page)
    await expect(page.locator("#end")).to_be_hidden()
    assert await session_count(app) == 0, "opening the page must not start a session"

    box = page.locator("#message")
    await box.click()
    await box.press_sequentially("When are you open on Saturdays?")
    await box.press("Enter")
    await wait_idle(page, 2)
    reply = (await texts(page, "assistant"))[-1]
    assert SATURDAY in reply
    assert await texts(page, "guest") == ["When are you open on Saturdays?"]

    # Streaming: the reply was seen on screen partly written, growing, before it was complete.
    stream = await page.evaluate("() => window.__stream")
    partial = [s for s in stream if 0 < s["length"] < len(reply)]
    assert len({s["length"] for s in partial}) >= 2, f"the reply did not arrive in pieces: {stream}"
    assert partial[-1]["at"] - partial[0]["at"] > 50, f"the pieces arrived together: {stream}"
    assert await session_count(app) == 1

    # Reload: the same conversation comes back, from the same session.
    await page.reload()
    await wait_ready(page)
    await expect(page.locator("#log li.msg.guest")).to_have_count(1)
    assert await texts(page, "assistant") == [GREETING, reply]
    await expect(page.locator("#end")).to_be_visible()
    second = await ask(page, "Where do I park?", replies=3)
    assert MILL_STREET in second
    assert await session_count(app) == 1, "the reload started a new session"
    await screenshot(page, f"chat-desktop-{db_name}.png")

    await page.locator("#end").click()
    await expect(page.locator("#notice")).to_have_text(ENDED_BY_GUEST)
    await expect(page.locator("#composer")).to_be_hidden()
    await expect(page.locator("#restart")).to_be_visible()
    await expect(page.locator("#restart")).to_be_focused()
    async with app.state.sessionmaker() as db:
        ended = (await db.execute(select(ChatSession.end_reason))).scalars().all()
    assert ended == ["guest"]
    errors.assert_none()
    await context.close()


# 2 ------------------------------------------------------------------------------------------------


async def test_a_private_link_with_one_session_is_used_once_then_says_it_is_exhausted(
    browser, server, app, alice: Person, db_name
):
    assistant = await library(alice, share="private")
    (link,) = await alice.new_links(assistant["id"], 1)
    context, page = await new_page(browser)
    errors = page_errors(page)

    await page.goto(f"{server}/c#k={key_of(link)}")
    await wait_ready(page)
    await expect(page.locator("#name")).to_have_text("Riverside Library")
    await expect(page.locator("#uses")).to_have_text("Your link has 1 session left.")
    await screenshot(page, f"chat-private-uses-{db_name}.png")
    assert (await link_state(alice, assistant["id"], link["id"]))["sessions_used"] == 0, "opening the page took a use"
    await page.reload()
    await wait_ready(page)
    assert (await link_state(alice, assistant["id"], link["id"]))["sessions_used"] == 0, "reloading took a use"

    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)
    used = await link_state(alice, assistant["id"], link["id"])
    assert (used["sessions_used"], used["sessions_left"]) == (1, 0)
    await expect(page.locator("#uses")).to_have_text("This is the last session on your link.")

    await page.locator("#end").click()
    await expect(page.locator("#notice")).to_have_text(ENDED_BY_GUEST)
    async with page.expect_response(is_lookup) as looked_up:
        await page.locator("#restart").click()
    assert (await looked_up.value).status == 403
    await expect(page.locator("#notice")).to_have_text(EXHAUSTED)
    # The page load's first refusal: counted, though lookups before it were admitted.
    assert await refusals(alice, assistant["id"]) == {"link_exhausted": 1}
    await expect(page.locator("#composer")).to_be_hidden()
    await expect(page.locator("#restart")).to_be_hidden()
    await expect(page.locator("#uses")).to_be_hidden()  # no stale "last session" line under the refusal
    await screenshot(page, f"chat-exhausted-{db_name}.png")
    assert (await link_state(alice, assistant["id"], link["id"]))["sessions_used"] == 1
    assert await session_count(app) == 1

    # Another link opened in the same tab differs only in its fragment: the page must follow it.
    (other,) = await alice.new_links(assistant["id"], 2)
    await page.goto(f"{server}/c#k={key_of(other)}")
    await wait_ready(page)
    await expect(page.locator("#uses")).to_have_text("Your link has 2 sessions left.")
    await expect(page.locator("#notice")).to_be_hidden()
    assert MILL_STREET in await ask(page, "Where do I park?", replies=2)
    assert (await link_state(alice, assistant["id"], other["id"]))["sessions_used"] == 1
    assert (await link_state(alice, assistant["id"], link["id"]))["sessions_used"] == 1
    errors.assert_none()
    await context.close()


# 3 ------------------------------------------------------------------------------------------------


async def test_owner_switching_offline_mid_conversation_shows_the_offline_sentence(
    browser, server, alice: Person, db_name
):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)

    response = await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    assert response.status_code == 200, response.text
    offline = await server_refusal(server, public_id=assistant["public_id"])
    assert offline["code"] == "assistant_offline"

    await page.locator("#message").fill("And on Sundays?")
    await page.locator("#message").press("Enter")
    # The message was not taken: it is back in the box, with the reason and a word that it was kept.
    await expect(page.locator("#notice")).to_have_text(f"{offline['message']} {KEPT}")
    await expect(page.locator("#message")).to_have_value("And on Sundays?")
    await expect(page.locator("#log li.msg.guest")).to_have_count(1)
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#end")).to_be_hidden()
    await expect(page.locator("#restart")).to_be_hidden()
    assert "assistant_offline" not in await page.locator("body").inner_text()
    await screenshot(page, f"chat-offline-{db_name}.png")
    errors.assert_none()
    await context.close()


# 4 ------------------------------------------------------------------------------------------------


async def test_a_deleted_private_link_shows_the_revoked_sentence_on_the_next_message(
    browser, server, alice: Person, db_name
):
    assistant = await library(alice, share="private")
    (link,) = await alice.new_links(assistant["id"], 5)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c#k={key_of(link)}")
    await wait_ready(page)
    await expect(page.locator("#uses")).to_have_text("Your link has 5 sessions left.")
    assert MILL_STREET in await ask(page, "Where can I park?", replies=2)
    await expect(page.locator("#uses")).to_have_text("Your link has 4 more sessions after this one.")

    response = await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    assert response.status_code == 204, response.text

    await page.locator("#message").fill("Can I return books on Sunday?")
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_have_text(f"{REVOKED} {KEPT}")
    await expect(page.locator("#message")).to_have_value("Can I return books on Sunday?")
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#restart")).to_be_hidden()
    await expect(page.locator("#uses")).to_be_hidden()
    assert "link_revoked" not in await page.locator("body").inner_text()
    await screenshot(page, f"chat-revoked-{db_name}.png")

    # Opening the link again says the same, before anything is typed.
    await page.reload()
    await expect(page.locator("#notice")).to_have_text(REVOKED)
    await expect(page.locator("#composer")).to_be_hidden()
    errors.assert_none()
    await context.close()


async def test_a_reissued_link_says_the_owner_replaced_it_on_the_next_message_and_on_reload(
    browser, server, alice: Person
):
    assistant = await library(alice, share="private")
    (link,) = await alice.new_links(assistant["id"], 5)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c#k={key_of(link)}")
    await wait_ready(page)
    assert MILL_STREET in await ask(page, "Where can I park?", replies=2)

    response = await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}/reissue")
    assert response.status_code == 200, response.text

    await page.locator("#message").fill("Can I return books on Sunday?")
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_contain_text("replaced your link with a new one")
    await page.reload()
    await expect(page.locator("#notice")).to_have_text(REFUSAL_MESSAGES[Refusal.LINK_REISSUED])
    assert "Check that you copied all of it" not in await page.locator("body").inner_text()
    errors.assert_none()
    await context.close()


# 5 ------------------------------------------------------------------------------------------------


async def test_on_a_phone_nothing_scrolls_sideways_and_the_chat_works(browser, server, alice: Person, db_name):
    assistant = await library(
        alice, description="Answers questions about the Riverside Library, its hours and its car park."
    )
    context, page = await new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)

    async def no_sideways_scroll() -> None:
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"

    await no_sideways_scroll()
    await expect(page.locator("#composer")).to_be_in_viewport()
    await expect(page.locator("#message")).to_be_visible()
    await expect(page.locator("#send")).to_be_in_viewport()

    await page.locator("#message").tap()
    assert MILL_STREET in await ask(page, "Where can I park? XK" + "0123456789" * 6, replies=2)
    assert SATURDAY in await ask(page, "And opening hours on Saturdays?", replies=3)
    await no_sideways_scroll()
    await expect(page.locator("#composer")).to_be_in_viewport()
    await expect(page.locator("#log li.msg.assistant").last).to_be_in_viewport()
    await screenshot(page, f"chat-phone-{db_name}.png")
    errors.assert_none()
    await context.close()


# 6 ------------------------------------------------------------------------------------------------


async def test_keyboard_only_reaches_the_message_box_sends_with_enter_and_reaches_end(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)

    await page.keyboard.press("Tab")
    await expect(page.locator("#message")).to_be_focused()
    await page.keyboard.type("When are you open on Saturdays?")
    await page.keyboard.press("Enter")
    await wait_idle(page, 2)
    assert SATURDAY in (await texts(page, "assistant"))[-1]
    await expect(page.locator("#message")).to_be_focused()  # ready for the next question
    await expect(page.locator("#message")).to_have_value("")

    # Shift+Enter is a new line, not a send.
    await page.keyboard.type("line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("line two")
    await expect(page.locator("#message")).to_have_value("line one\nline two")
    await expect(page.locator("#log li.msg.guest")).to_have_count(1)
    await page.locator("#message").fill("")

    order = []
    for _ in range(6):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => document.activeElement && document.activeElement.id")
        order.append(focused)
        if focused == "end":
            break
    assert order[-1] == "end", f"Tab never reached the End button; focus went {order}"
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_have_text(ENDED_BY_GUEST)
    await expect(page.locator("#restart")).to_be_focused()
    await page.keyboard.press("Enter")
    await wait_ready(page)
    await expect(page.locator("#message")).to_be_focused()
    await context.close()


# 7 ------------------------------------------------------------------------------------------------


async def test_axe_finds_no_serious_accessibility_problem_before_during_or_after_a_conversation(
    browser, server, alice: Person
):
    public = await library(alice)
    private = await library(alice, share="private")
    (link,) = await alice.new_links(private["id"], 3)
    context, page = await new_page(browser, bypass_csp=True)
    found: list[dict] = []

    await page.goto(f"{server}/c/{public['public_id']}")
    await wait_ready(page)
    found += serious(await run_axe(page, "public link, before"))
    await ask(page, "When are you open on Saturdays?", replies=2)
    await ask(page, "Where do I park?", replies=3)
    found += serious(await run_axe(page, "public link, after two replies"))
    await page.locator("#end").click()
    await expect(page.locator("#restart")).to_be_visible()
    found += serious(await run_axe(page, "public link, ended"))

    await page.goto(f"{server}/c#k={key_of(link)}")
    await wait_ready(page)
    await expect(page.locator("#uses")).to_be_visible()
    found += serious(await run_axe(page, "private link, before"))
    await ask(page, "Where do I park?", replies=2)
    found += serious(await run_axe(page, "private link, after a reply"))

    await page.goto(f"{server}/c#k=ptk_not-a-real-key")
    await expect(page.locator("#notice")).to_be_visible()
    found += serious(await run_axe(page, "invalid link"))
    assert not found, "axe found serious or critical problems (printed above): " + ", ".join(v["id"] for v in found)
    await context.close()


# 8 ------------------------------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, str]:
    parts = (d.strip().split(None, 1) for d in header.split(";") if d.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


async def test_the_page_is_locked_down_talks_only_to_portico_and_never_sends_the_key_in_a_url(
    browser, server, server_log: Path, alice: Person
):
    public = await library(alice)
    private = await library(alice, share="private")
    (link,) = await alice.new_links(private["id"], 0)
    key = key_of(link)

    async with httpx.AsyncClient(base_url=server) as http:
        for path in (f"/c/{public['public_id']}", "/c"):
            page_response = await http.get(path)
            assert page_response.status_code == 200
            headers = page_response.headers
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-content-type-options"] == "nosniff"
            csp = csp_directives(headers["content-security-policy"])
            assert csp["default-src"] == "'none'"
            for directive in ("script-src", "style-src", "connect-src"):
                assert csp[directive] == "'self'", (directive, csp)
            assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'"
            assert not re.search(r"unsafe-|\*|https?:", headers["content-security-policy"])

        # Page weight: what a guest downloads before the first message, compressed.
        html = (await http.get(f"/c/{public['public_id']}")).text
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert sorted(urlsplit(a).path for a in assets) == [
            "/static/chat-reply.js",
            "/static/chat.css",
            "/static/chat.js",
            "/static/markdown.js",  # which fetches vendor/marked.js and vendor/purify.js once there is Markdown
        ]
        bodies = [html.encode()] + [(await http.get(asset)).content for asset in assets]
        weight = sum(len(gzip.compress(body, compresslevel=9)) for body in bodies)
        print(f"chat page weight: {weight} bytes gzipped ({sum(map(len, bodies))} bytes raw)")
        # Markdown (vendor/marked.js and vendor/purify.js, about 28 KB gzipped) is most of it.
        assert weight <= 48 * 1024

    context, page = await new_page(browser)
    errors = page_errors(page)
    requests = []
    page.on("request", lambda request: requests.append(request))
    origin = urlsplit(server)

    page_response = await page.goto(f"{server}/c#k={key}")
    assert page_response is not None and page_response.headers["referrer-policy"] == "no-referrer"
    await wait_ready(page)
    assert SATURDAY in await ask(page, "When are you open on Saturdays?", replies=2)
    await page.reload()
    await wait_ready(page)
    assert MILL_STREET in await ask(page, "Where do I park?", replies=3)
    await page.locator("#end").click()
    await expect(page.locator("#notice")).to_have_text(ENDED_BY_GUEST)

    methods = {(r.method, urlsplit(r.url).path) for r in requests}
    assert ("POST", "/api/v1/chat/sessions") in methods  # the whole conversation was recorded
    assert any(path.endswith("/end") for _, path in methods)
    for request in requests:
        url = urlsplit(request.url)
        if url.scheme == "data":
            continue  # the inline empty favicon: not a network request
        assert (url.scheme, url.netloc) == (origin.scheme, origin.netloc), f"third-party request: {request.url}"
        sent = request.url.split("#", 1)[0]  # a fragment is never sent
        assert key not in sent and key[4:20] not in sent, f"the key is in a request URL: {request.method} {sent}"
        headers = await request.all_headers()
        assert not headers.get("referer"), f"{request.url} sent a Referer: {headers.get('referer')}"
        assert all(key not in value for value in headers.values())
    key_bodies = [r for r in requests if r.post_data and key in r.post_data]
    assert key_bodies, "the key should travel in request bodies"
    logged = server_log.read_text()
    assert "POST /api/v1/chat/sessions" in logged, "the access log was not captured"
    assert key not in logged
    errors.assert_none()
    await context.close()


# 9 ------------------------------------------------------------------------------------------------


async def test_every_refusal_at_the_gate_shows_the_servers_sentence_and_is_counted_once_per_page_load(
    browser, server, app, alice: Person, db_name
):
    public = await library(alice, name="Public Library")
    draft = await library(alice, name="Draft Library", publish=False, live=False)
    offline = await library(alice, name="Offline Library", live=False)
    private = await library(alice, name="Private Library", share="private")
    revoked, exhausted, elsewhere = await alice.new_links(private["id"], 5, 1, 5)
    response = await alice.request("DELETE", f"/api/v1/assistants/{private['id']}/links/{revoked['id']}")
    assert response.status_code == 204, response.text
    async with httpx.AsyncClient(base_url=server) as http:
        started = await http.post("/api/v1/chat/sessions", json={"key": key_of(exhausted)})
        assert started.status_code == 201, started.text  # the link's one session
    sessions_before = await session_count(app)

    # Each row of the gate a guest can reach through the chat page: the code, the page, what the
    # same question asks the API, and the assistant whose Metrics count it (None: no assistant
    # is named, so there is nobody to count it for).
    rows = [
        ("not_found", "/c/nobody-here", {"public_id": "nobody-here"}, None),
        ("not_published", f"/c/{draft['public_id']}", {"public_id": draft["public_id"]}, draft),
        ("assistant_offline", f"/c/{offline['public_id']}", {"public_id": offline["public_id"]}, offline),
        ("link_invalid", "/c#k=ptk_not-a-real-key", {"key": "ptk_not-a-real-key"}, None),
        (
            "link_invalid",  # another assistant's key, on this assistant's page (as the widget sends it)
            f"/c/{public['public_id']}#k={key_of(elsewhere)}",
            {"public_id": public["public_id"], "key": key_of(elsewhere)},
            public,
        ),
        ("link_revoked", f"/c#k={key_of(revoked)}", {"key": key_of(revoked)}, private),
        ("link_exhausted", f"/c#k={key_of(exhausted)}", {"key": key_of(exhausted)}, private),
        ("key_required", f"/c/{private['public_id']}", {"public_id": private["public_id"]}, private),
    ]
    everyone = (public, draft, offline, private)
    expected: dict[int, dict[str, int]] = {a["id"]: {} for a in everyone}
    context, page = await new_page(browser)
    errors = page_errors(page)
    for code, path, body, counted_on in rows:
        said = await server_refusal(server, **body)
        assert said["code"] == code, (path, said)
        for load in ("open", "reload"):
            async with page.expect_response(is_lookup) as looked_up:
                await (page.goto(f"{server}{path}") if load == "open" else page.reload())
            response = await looked_up.value
            assert json.loads(response.request.post_data or "{}").get("count") is True, (path, load)
            await expect(page.locator("#notice")).to_have_text(said["message"])
            await expect(page.locator("#composer")).to_be_hidden()
            await expect(page.locator("#restart")).to_be_hidden()
            await expect(page.locator("#name")).not_to_have_text("Loading…")
            if counted_on is None:
                # No assistant to name: no letter from a placeholder.
                await expect(page.locator(".avatar")).to_be_hidden()
            else:
                expected[counted_on["id"]][code] = expected[counted_on["id"]].get(code, 0) + 1
            assert code not in await page.locator("body").inner_text()
            for assistant in everyone:
                assert await refusals(alice, assistant["id"]) == expected[assistant["id"]], (path, load)
        await page.goto("about:blank")  # the next key differs only in its fragment
    if db_name == "sqlite":
        await page.goto(f"{server}/c#k={key_of(exhausted)}")
        await expect(page.locator("#notice")).to_have_text(EXHAUSTED)
        await screenshot(page, "chat-refused-unnamed.png")
    assert await session_count(app) == sessions_before, "a refused page started a session"
    errors.assert_none()
    await context.close()


# 10 -----------------------------------------------------------------------------------------------


async def test_a_message_over_the_limit_is_refused_in_the_servers_words_and_stays_in_the_box(
    browser, server, alice: Person
):
    assistant = await library(alice)  # the default limit: 4,000 characters
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)

    too_long = "Where do I park? " + "Please tell me. " * 250
    assert len(too_long) > 4_000
    box = page.locator("#message")
    await box.fill(too_long)
    await box.press("Enter")
    await expect(page.locator("#too-long")).to_contain_text("at most 4,000 characters")
    await expect(box).to_have_value(too_long)
    await expect(page.locator("#log li.msg.guest")).to_have_count(0)  # it was not sent
    await expect(page.locator("#composer")).to_be_visible()
    await expect(page.locator("#send")).to_be_enabled()
    assert "message_too_long" not in await page.locator("body").inner_text()

    # Shortened, it goes through, and the refusal is gone.
    assert MILL_STREET in await ask(page, "Where do I park?", replies=2)
    await expect(page.locator("#too-long")).to_be_hidden()
    errors.assert_none()
    await context.close()


# 11 -----------------------------------------------------------------------------------------------


def test_the_guest_scripts_hold_no_sentence_of_their_own():
    # Every sentence a guest reads about a refusal, an ending or an error comes from the server.
    sentences = [*REFUSAL_MESSAGES.values(), *END_MESSAGES.values(), NETWORK_MESSAGE]
    fragments = ["try again", "has ended", "too long", "could not answer", "offline right now"]
    for script in ("chat.js", "chat-reply.js", "markdown.js", "widget.js"):
        text = (STATIC / script).read_text().lower()
        found = [s for s in [*sentences, *fragments] if s.lower() in text]
        assert not found, f"{script} has its own guest sentences: {found}"
