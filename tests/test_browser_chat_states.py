"""The chat page's states in a real browser (issues 13 and 14): refusal pages that name no one and
never say "Loading…"; an over-long message that stays in the box with a counter and a sentence; a
guest whose session ended gets their text back; cut and failed replies said in words with an
icon; the copy button and the reply's time; Accept-Language on every API call. Both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from playwright.async_api import expect

from portico.chat.messages import SessionEnded
from portico.chat.views import NETWORK_MESSAGE, UNAVAILABLE
from portico.vocabulary import REFUSAL_MESSAGES, Refusal
from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of
from tests.scripted_model import engine, scripted_model
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
    session_count,
    wait_idle,
    wait_ready,
)

# The page's sentences (chat.html), as a guest reads them.
CUT = "This reply was cut off before it was finished."
FAILED = "There is no reply: something went wrong."


@pytest.fixture
def model() -> Iterator[str]:
    with scripted_model() as url:
        yield url


async def test_refusal_pages_of_private_links_show_the_sentence_and_name_no_one(
    browser, server, alice: Person, db_name
):
    assistant = await library(alice, share="private")
    revoked, exhausted, paused = await alice.new_links(assistant["id"], 5, 1, 5)
    base = f"/api/v1/assistants/{assistant['id']}/links"
    assert (await alice.request("DELETE", f"{base}/{revoked['id']}")).status_code == 204
    assert (await alice.request("PATCH", f"{base}/{paused['id']}", json={"paused": True})).status_code == 200
    async with httpx.AsyncClient(base_url=server) as http:
        assert (await http.post("/api/v1/chat/sessions", json={"key": key_of(exhausted)})).status_code == 201

    context, page = await new_page(browser)
    errors = page_errors(page)
    rows = [
        (revoked, Refusal.LINK_REVOKED),
        (exhausted, Refusal.LINK_EXHAUSTED),
        (paused, Refusal.LINK_PAUSED),
        ({"url": "#k=ptk_not-a-real-key"}, Refusal.LINK_INVALID),
    ]
    for link, code in rows:
        await page.goto("about:blank")
        await page.goto(f"{server}/c#k={key_of(link)}")
        await expect(page.locator("#notice")).to_have_text(REFUSAL_MESSAGES[code])
        await expect(page.locator("#name")).to_have_text(UNAVAILABLE)  # never "Loading…"
        await expect(page.locator(".avatar")).to_be_hidden()  # no letter of a placeholder
        await expect(page.locator("#composer")).to_be_hidden()
        await expect(page).to_have_title(UNAVAILABLE)

    # The server cannot be reached at all: the page says so, and still names no one.
    await page.goto("about:blank")
    await page.route("**/api/v1/chat/lookup", lambda route: route.abort())
    await page.goto(f"{server}/c#k={key_of(revoked)}")
    await expect(page.locator("#notice")).to_have_text(NETWORK_MESSAGE)
    await expect(page.locator("#name")).to_have_text(UNAVAILABLE)
    await expect(page.locator(".avatar")).to_be_hidden()
    errors.assert_none()
    await context.close()


async def test_a_message_over_the_limit_stays_in_the_box_with_a_counter_and_is_never_sent(
    browser, server, app, alice: Person
):
    assistant = await library(alice, settings={"max_message_length": 60})
    context, page = await new_page(browser)
    errors = page_errors(page)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/v1/chat/sessions" in r.url else None)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    box, counter, too_long = page.locator("#message"), page.locator("#counter"), page.locator("#too-long")

    await box.fill("Where do I park?")
    await expect(counter).to_be_hidden()  # far from the limit: no counter
    await box.fill("x" * 55)
    await expect(counter).to_have_text("55 / 60")  # near it: a live counter
    await expect(too_long).to_be_hidden()
    await box.press("End")
    await box.press_sequentially("yyyyyy")
    await expect(counter).to_have_text("61 / 60")
    await expect(too_long).to_have_text("This message is too long: at most 60 characters, please.")
    await expect(box).to_have_attribute("aria-invalid", "true")

    text = "x" * 55 + "yyyyyy"
    await box.press("Enter")
    await page.locator("#send").click()
    await expect(box).to_have_value(text)  # not sent, not cleared, not lost
    await expect(too_long).to_be_visible()
    await expect(page.locator("#log li.msg.guest")).to_have_count(0)
    assert sent == [] and await session_count(app) == 0

    # Shortened, it is sent; the sentence and the counter go.
    await box.fill("Where do I park?")
    await expect(too_long).to_be_hidden()
    await expect(box).to_have_attribute("aria-invalid", "false")
    await box.press("Enter")
    await wait_idle(page, 2)
    assert await session_count(app) == 1
    errors.assert_none()
    await context.close()


async def test_a_guest_whose_session_ended_gets_the_typed_text_back_and_a_sentence_why(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)

    # The session ends elsewhere (another tab of the same guest ends it).
    saved = await page.evaluate("() => JSON.parse(sessionStorage.getItem(sessionStorage.key(0)))")
    async with httpx.AsyncClient(base_url=server) as http:
        headers = {"Authorization": f"Bearer {saved['token']}"}
        assert (await http.post(f"/api/v1/chat/sessions/{saved['id']}/end", headers=headers)).status_code == 200

    question = "Where do I park?\nI come by car."
    await page.locator("#message").fill(question)
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_have_text(f"{SessionEnded.message} {KEPT}")
    await expect(page.locator("#message")).to_have_value(question)
    await expect(page.locator("#log li.msg.guest")).to_have_count(1)  # the unsent one is not shown as sent
    await expect(page.locator("#restart")).to_be_visible()

    # A new conversation: the text is still there, and goes.
    await page.locator("#restart").click()
    await wait_ready(page)
    await expect(page.locator("#message")).to_have_value(question)
    await page.locator("#message").press("Enter")
    await wait_idle(page, 2)
    await expect(page.locator("#log li.msg.assistant").last).to_contain_text(MILL_STREET)

    # Offline: no new conversation helps, but the text stays, with the reason.
    offline = await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    assert offline.status_code == 200
    await page.locator("#message").fill("And on Sundays?")
    await page.locator("#message").press("Enter")
    await expect(page.locator("#notice")).to_have_text(f"{REFUSAL_MESSAGES[Refusal.ASSISTANT_OFFLINE]} {KEPT}")
    await expect(page.locator("#message")).to_have_value("And on Sundays?")
    await expect(page.locator("#send")).to_be_disabled()
    await expect(page.locator("#restart")).to_be_hidden()
    errors.assert_none()
    await context.close()


async def test_a_cut_or_failed_reply_says_so_in_words_with_an_icon_and_the_servers_sentence(
    browser, server, alice: Person, model: str
):
    cut = await library(alice, engine=engine(model, "cut"))
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{cut['public_id']}")
    await wait_ready(page)
    await page.locator("#message").fill("one two three four five six")
    await page.locator("#message").press("Enter")
    await wait_idle(page, 2)
    reply = page.locator("#log li.msg.assistant").last
    await expect(reply.locator(".text")).to_contain_text("one two three")
    await expect(reply.locator(".state")).to_have_text(CUT)
    await expect(reply.locator(".state svg")).to_have_count(1)
    await expect(reply.locator(".why")).not_to_be_empty()  # the server's sentence about it
    await expect(reply.locator(".rate")).to_have_count(0)  # only a finished reply is rated
    await expect(reply.locator(".copy")).to_be_visible()  # what arrived can still be copied

    # An engine that cannot be reached: no text at all.
    failing = await library(alice, engine=engine("http://127.0.0.1:9/v1"))
    await page.goto(f"{server}/c/{failing['public_id']}")
    await wait_ready(page)
    await page.locator("#message").fill("Anyone there?")
    await page.locator("#message").press("Enter")
    await wait_idle(page, 2)
    reply = page.locator("#log li.msg.assistant").last
    await expect(reply.locator(".state")).to_have_text(FAILED)
    await expect(reply.locator(".state svg")).to_have_count(1)
    await expect(reply.locator(".why")).not_to_be_empty()
    await expect(reply.locator(".copy")).to_have_count(0)
    # Resumed: the transcript says the same in words.
    await page.reload()
    await wait_ready(page)
    await expect(page.locator("#log li.msg.assistant").last.locator(".state")).to_have_text(FAILED)
    errors.assert_none()
    await context.close()


async def test_a_reply_has_a_copy_button_and_its_time_and_every_api_call_says_the_pages_language(
    browser, server, alice: Person
):
    assistant = await library(alice)
    context, page = await new_page(browser, permissions=["clipboard-read", "clipboard-write"])
    errors = page_errors(page)
    languages: list[tuple[str, str | None]] = []

    async def note(request) -> None:  # type: ignore[no-untyped-def]
        if "/api/" in request.url:
            languages.append((request.url, await request.header_value("accept-language")))

    page.on("request", note)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    reply_text = await ask(page, "When are you open on Saturdays?", replies=2)
    reply = page.locator("#log li.msg.assistant").last

    copy = reply.locator("button.copy")
    await copy.click()
    await expect(copy).to_contain_text("Copied")
    copied = await page.evaluate("() => navigator.clipboard.readText()")
    # The reply as written (its Markdown), which the page shows with the line breaks as breaks.
    assert SATURDAY in copied and re.sub(r"\s", "", copied) == re.sub(r"\s", "", reply_text)

    when = reply.locator("time")
    stamp = await when.get_attribute("datetime")
    assert (
        stamp is not None and abs((datetime.now().astimezone() - datetime.fromisoformat(stamp)).total_seconds()) < 120
    )
    expected = await page.evaluate(
        "s => new Intl.DateTimeFormat(document.documentElement.lang, { hour: 'numeric', minute: '2-digit' }).format(new Date(s))",
        stamp,
    )
    await expect(when).to_have_text(expected)
    assert re.search(r"\d", expected)

    await page.reload()  # a resume, then a new conversation: a lookup
    await wait_ready(page)
    await page.locator("#end").click()
    async with page.expect_response(is_lookup):
        await page.locator("#restart").click()
    await wait_ready(page)
    assert languages and all(lang == "en" for _, lang in languages), languages
    errors.assert_none()
    await context.close()


async def test_without_javascript_the_page_says_so_and_nothing_can_be_sent(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser, java_script_enabled=False)
    await page.goto(f"{server}/c/{assistant['public_id']}?lang=de")
    said = page.locator("noscript .notice")  # Playwright's text search leaves <noscript> out
    await expect(said).to_be_visible()
    await expect(said).to_have_text("Dieser Chat braucht JavaScript, das in diesem Browser ausgeschaltet ist.")
    # Sent as a plain form, the message would go into a URL (and a private link's key would be lost).
    await expect(page.locator("#send")).to_be_disabled()
    await context.close()

    context, page = await new_page(browser)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await expect(page.locator("#send")).to_be_enabled()
    await expect(page.locator("#send")).to_have_accessible_name("Send message")
    assert not await page.locator("noscript .notice").is_visible()
    await context.close()
