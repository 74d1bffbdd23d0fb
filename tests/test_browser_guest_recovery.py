"""A guest's chat page recovers and stays readable (issue 21, items 1 and 7), in a real browser
against a real `portico serve`, once, on SQLite (the browser rule in tests/conftest.py).

- After Offline and Live again, the page and the widget's frame offer a new conversation on their
  own, with the old one still on screen: they ask the lookup now and then, less and less often,
  and stop once it answers. The page's clock is Playwright's (`clock.install`), so minutes of
  waiting take no time; the server, its answers and the browser are real.
- At 390 px, the Offline, rate-limit and message-limit notices are whole on screen above the
  message box; the message limit offers a new conversation and disables Send; the German
  access-code form fits.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from portico.vocabulary import REFUSAL_MESSAGES, Refusal
from tests.browser import browser, page_errors, screenshot  # noqa: F401  (browser: fixture)
from tests.conftest import Person
from tests.servers import portico_server
from tests.test_browser_chat import (  # noqa: F401  (server, server_log, db_name: fixtures)
    KEPT,
    MILL_STREET,
    SATURDAY,
    ask,
    db_name,
    is_lookup,
    library,
    new_page,
    server,
    server_log,
    wait_idle,
    wait_ready,
)
from tests.test_browser_widget import (  # noqa: F401  (host_sites: fixture)
    LIBRARY_GREETING,
    LIBRARY_KNOWLEDGE,
    ClosedWidget,
    bubble_name,
    chat_frame,
    host_events,
    host_sites,
    wait_panel,
    widget_tag,
)
from tests.test_browser_widget import ask as ask_in_frame

PHONE = {"width": 390, "height": 844}
PHONE_OPTIONS = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
OFFLINE = REFUSAL_MESSAGES[Refusal.ASSISTANT_OFFLINE]
# The page's sentence (chat.html) when the assistant answers again, in English and German.
BACK = "The assistant is back online. Start a new conversation to keep talking."
BACK_DE = "Der Assistent ist wieder online. Beginnen Sie ein neues Gespräch, um weiterzuschreiben."
OFFLINE_DE = "Dieser Assistent ist gerade offline. Bitte versuchen Sie es später noch einmal."
KEPT_DE = "Ihre Nachricht wurde nicht gesendet; sie steht noch im Eingabefeld."


async def set_status(owner: Person, assistant: dict, status: str) -> None:
    response = await owner.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": status})
    assert response.status_code == 200, response.text


def lookups_of(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The lookups the page (or its frames) asks, as they go out."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if is_lookup(request) else None)
    return asked


async def wait_then_lookup(page, seconds: int) -> None:  # type: ignore[no-untyped-def]
    """Moves the page's clock on and waits for the one lookup that this makes the page ask."""
    async with page.expect_response(is_lookup):
        await page.clock.fast_forward(seconds * 1000)


async def whole_above_the_box(page, selector: str, box: str = "#composer") -> None:  # type: ignore[no-untyped-def]
    """The element is on screen whole: near each corner (clear of its rounding) the browser's own hit
    test finds it (not clipped by the conversation's scrolling, not under the message box, not off
    screen), and it ends above the message box."""
    element = page.locator(selector)
    await expect(element).to_be_visible()
    missed = await element.evaluate(
        """e => {
            const r = e.getBoundingClientRect();
            const corners = [[r.left + 12, r.top + 2], [r.right - 12, r.top + 2], [r.left + 12, r.bottom - 2], [r.right - 12, r.bottom - 2]];
            return corners.filter(([x, y]) => { const hit = document.elementFromPoint(x, y); return !hit || !e.contains(hit); });
        }"""
    )
    assert not missed, f"{selector} is cut off or covered at {missed}"
    bottom = await element.evaluate("e => e.getBoundingClientRect().bottom")
    top = await page.locator(box).evaluate("e => e.getBoundingClientRect().top")
    assert bottom <= top, f"{selector} ends at {bottom}px, under the message box's top at {top}px"


async def test_a_guest_whose_assistant_went_offline_is_offered_a_new_conversation_when_it_is_back(
    browser, server, alice: Person, db_name
):
    assistant = await library(alice)
    context, page = await new_page(browser, **PHONE_OPTIONS)
    await context.clock.install()
    await context.add_init_script("Object.defineProperty(document, 'hidden', { get: () => !!window.__hidden });")
    errors = page_errors(page)
    asked = lookups_of(page)
    await page.goto(f"{server}/c/{assistant['public_id']}?lang=de")
    await wait_ready(page)
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)

    await set_status(alice, assistant, "offline")
    await page.locator("#message").fill("Where do I park?")
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_have_text(f"{OFFLINE_DE} {KEPT_DE}")
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#restart")).to_be_hidden()
    assert len(asked) == 1  # the page's first lookup

    # Still offline: the page asks after about 10 s, then waits longer (about 20 s) before the next.
    await wait_then_lookup(page, 13)
    assert len(asked) == 2
    await page.clock.fast_forward(15_000)
    await wait_then_lookup(page, 11)
    assert len(asked) == 3, "the page asked again before its wait grew"
    await expect(page.locator("#restart")).to_be_hidden()
    await expect(page.locator("#notice")).to_have_text(f"{OFFLINE_DE} {KEPT_DE}")

    # Another tab in front: the page asks nothing, however long; back in front, it asks at once.
    # (Headless Chromium never hides a page, so the test says when it is hidden, as a browser would.)
    await page.evaluate("() => { window.__hidden = true; document.dispatchEvent(new Event('visibilitychange')); }")
    await page.clock.fast_forward("05:00")
    await page.evaluate("() => new Promise(done => setTimeout(done, 0))")
    assert len(asked) == 3, "a hidden page asked"
    async with page.expect_response(is_lookup):
        await page.evaluate("() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); }")
    assert len(asked) == 4

    # Live again: at the next ask (within 75 s now) the page says so, in German, and offers a
    # new conversation; the old one is still there to read, and nothing was sent on its own.
    await set_status(alice, assistant, "live")
    await wait_then_lookup(page, 75)
    await expect(page.locator("#notice")).to_have_text(BACK_DE)
    await expect(page.locator("#restart")).to_be_visible()
    await expect(page.locator("#restart")).to_have_text("Neues Gespräch beginnen")
    await expect(page.locator("#log li.msg.guest")).to_have_count(1)
    await expect(page.locator("#log li.msg.assistant").last).to_contain_text(SATURDAY)
    await expect(page.locator("#send")).to_be_disabled()
    await whole_above_the_box(page, "#notice")
    await whole_above_the_box(page, "#restart-wrap")
    await screenshot(page, f"guest-back-online-{db_name}.png")

    # Once it answered, the page asks no more.
    before = len(asked)
    await page.clock.fast_forward("10:00")
    await page.evaluate("() => new Promise(done => setTimeout(done, 0))")
    assert len(asked) == before

    await page.locator("#restart").click()
    await wait_ready(page)
    await expect(page.locator("#message")).to_have_value("Where do I park?")  # kept for the new one
    await page.locator("#message").press("Enter")
    await wait_idle(page, 2)
    await expect(page.locator("#log li.msg.assistant").last).to_contain_text(MILL_STREET)
    errors.assert_none()
    await context.close()


async def test_the_widget_offers_a_new_conversation_after_offline_and_live_again(
    browser, server, alice: Person, db_name, host_sites
):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE
    )
    site = host_sites()
    url = site.page(
        "/", "<main><h1>Riverside news</h1></main>" + widget_tag(server, assistant, title="Riverside Library")
    )
    context, page = await new_page(browser, **PHONE_OPTIONS)
    await context.clock.install()  # the host page's clock and its frame's
    await context.add_init_script(
        "if (location.pathname === '/') { window.__events = [];"
        " addEventListener('portico:session-start', e => window.__events.push({ type: 'session-start', detail: e.detail })); }"
    )
    errors = page_errors(page)
    asked = lookups_of(page)
    widget = await ClosedWidget(page).start()
    await page.goto(url)
    await widget.click("button", bubble_name("Riverside Library"))
    frame = await chat_frame(page, assistant["widget_id"])
    await wait_panel(frame, open_=True)
    assert SATURDAY in await ask_in_frame(frame, "When are you open on Saturdays?", replies=2)

    await set_status(alice, assistant, "offline")
    await frame.locator("#message").fill("Where do I park?")
    await frame.locator("#message").press("Enter")
    await expect(frame.locator("#notice")).to_have_text(f"{OFFLINE} {KEPT}")
    await expect(frame.locator("#restart")).to_be_hidden()
    await wait_then_lookup(page, 13)  # still offline
    await expect(frame.locator("#restart")).to_be_hidden()

    await set_status(alice, assistant, "live")
    await wait_then_lookup(page, 26)
    await expect(frame.locator("#notice")).to_have_text(BACK)
    await expect(frame.locator("#restart")).to_be_visible()
    await expect(frame.locator("#log li.msg.assistant").last).to_contain_text(SATURDAY)  # still readable
    await whole_above_the_box(frame, "#notice")
    await screenshot(page, f"guest-widget-back-online-{db_name}.png")

    await frame.locator("#restart").click()
    await expect(frame.locator("#message")).to_have_value("Where do I park?")
    await frame.locator("#message").press("Enter")
    await wait_idle(frame, 2)
    await expect(frame.locator("#log li.msg.assistant").last).to_contain_text(MILL_STREET)
    started = await host_events(page, "session-start")
    assert len(started) == 2 and started[0]["detail"]["session_id"] != started[1]["detail"]["session_id"]
    assert len(asked) >= 3
    errors.assert_none()
    await context.close()


async def three_questions(page) -> None:  # type: ignore[no-untyped-def]
    """Enough conversation that it scrolls on a phone."""
    await wait_ready(page)
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)
    assert MILL_STREET in await ask(page, "Where do I park?", replies=3)
    await ask(page, "How do I return books?", replies=4)
    overflow = await page.locator(".log-wrap").evaluate("e => e.scrollHeight - e.clientHeight")
    assert overflow > 0, "the conversation should scroll for this test to mean something"


async def send_refused(page, text: str) -> None:  # type: ignore[no-untyped-def]
    await page.locator("#message").fill(text)
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_be_visible()


async def test_on_a_phone_the_offline_and_message_limit_notices_are_whole_above_the_message_box(
    browser, server, alice: Person, db_name
):
    assistant = await library(alice)
    base = f"/api/v1/assistants/{assistant['id']}"
    capped = await alice.request("PATCH", base, json={"quotas": {"messages_per_session": 3}})
    assert capped.status_code == 200, capped.text
    context, page = await new_page(browser, **PHONE_OPTIONS)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await three_questions(page)

    # The fourth message passes the assistant's cap: a new conversation is offered, Send is off.
    await send_refused(page, "Can I bring my dog?")
    limit = REFUSAL_MESSAGES[Refusal.MESSAGE_LIMIT_REACHED]
    await expect(page.locator("#notice")).to_have_text(f"{limit} {KEPT}")
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#restart")).to_be_focused()
    await whole_above_the_box(page, "#notice")
    await whole_above_the_box(page, "#restart-wrap")
    await screenshot(page, f"guest-phone-message-limit-{db_name}.png")
    await page.locator("#restart").click()
    await wait_ready(page)
    await expect(page.locator("#message")).to_have_value("Can I bring my dog?")
    await page.locator("#message").press("Enter")
    await wait_idle(page, 2)  # a new session, with messages of its own
    await expect(page.locator("#notice")).to_be_hidden()
    errors.assert_none()
    await context.close()

    # Offline, in a new tab (a conversation of its own) with the cap lifted.
    uncapped = await alice.request("PATCH", base, json={"quotas": {"messages_per_session": 0}})
    assert uncapped.status_code == 200, uncapped.text
    context, page = await new_page(browser, **PHONE_OPTIONS)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await three_questions(page)
    await set_status(alice, assistant, "offline")
    await send_refused(page, "Are you open on Sundays?")
    await expect(page.locator("#notice")).to_have_text(f"{OFFLINE} {KEPT}")
    await whole_above_the_box(page, "#notice")
    await screenshot(page, f"guest-phone-offline-{db_name}.png")
    errors.assert_none()
    await context.close()


async def test_on_a_phone_the_rate_limit_notice_is_whole_above_the_message_box(
    browser, settings, app, alice: Person, db_name, tmp_path: Path
):
    assistant = await library(alice)
    # A server of its own: three messages a minute per session.
    with portico_server(settings, tmp_path / "limited.log", PORTICO_RATE_MESSAGES="3/minute") as limited:
        context, page = await new_page(browser, **PHONE_OPTIONS)
        errors = page_errors(page)
        await page.goto(f"{limited}/c/{assistant['public_id']}")
        await three_questions(page)
        await send_refused(page, "Can I bring my dog?")
        await expect(page.locator("#notice")).to_contain_text(REFUSAL_MESSAGES[Refusal.RATE_LIMITED])
        await whole_above_the_box(page, "#notice")
        await screenshot(page, f"guest-phone-rate-limited-{db_name}.png")
        errors.assert_none()
        await context.close()


async def test_on_a_phone_the_german_access_code_form_fits(browser, server, alice: Person, db_name):
    assistant = await library(alice)
    body = {"mode": "public", "access_code": "river 2026"}
    assert (await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json=body)).status_code == 200
    context, page = await new_page(browser, **PHONE_OPTIONS)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}?lang=de")
    await expect(page.locator("#access-code")).to_be_visible()
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
    button = page.locator("#code-form button")
    await expect(button).to_have_text("Weiter")
    await expect(button).to_be_in_viewport(ratio=1)
    await expect(page.locator("#access-code")).to_be_in_viewport(ratio=1)
    await whole_above_the_box(page, "#notice", box="#code-form")
    await screenshot(page, f"guest-phone-access-code-de-{db_name}.png")

    await page.locator("#access-code").fill("river 2026")
    await button.click()
    await wait_ready(page)
    errors.assert_none()
    await context.close()
