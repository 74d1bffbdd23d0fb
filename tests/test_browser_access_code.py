"""The chat page asks for the public link's access code before the first message, and keeps it for
the tab only; a paused link shows the server's sentence. In a real browser, on SQLite."""

from __future__ import annotations

from playwright.async_api import expect

from portico.vocabulary import REFUSAL_MESSAGES, Refusal
from tests.browser import browser, page_errors, screenshot  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of
from tests.test_browser_chat import (  # noqa: F401  (fixtures)
    SATURDAY,
    ask,
    db_name,
    library,
    new_page,
    server,
    server_log,
    session_count,
    wait_ready,
)

CODE = "river 2026"


async def test_a_guest_types_the_access_code_before_the_first_message(
    browser, server, app, alice: Person, db_name, server_log
):
    assistant = await library(alice)
    body = {"mode": "public", "access_code": CODE}
    saved = await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json=body)
    assert saved.status_code == 200
    context, page = await new_page(browser)
    errors = page_errors(page)

    await page.goto(f"{server}/c/{assistant['public_id']}")
    code = page.locator("#access-code")
    await expect(code).to_be_visible()
    await expect(code).to_be_focused()
    await expect(page.locator("#notice")).to_have_text(REFUSAL_MESSAGES[Refusal.ACCESS_CODE_REQUIRED])
    await expect(page.locator("#composer")).to_be_hidden()

    await code.fill("not it")
    await code.press("Enter")
    await expect(page.locator("#notice")).to_have_text(REFUSAL_MESSAGES[Refusal.ACCESS_CODE_INVALID])
    await expect(code).to_be_visible()
    await screenshot(page, f"chat-access-code-{db_name}.png")

    await code.fill(CODE)
    await code.press("Enter")
    await wait_ready(page)
    await expect(page.locator("#composer")).to_be_visible()
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)
    assert await session_count(app) == 1

    # The tab remembers it: a new conversation asks nothing; a new tab asks again.
    await page.locator("#end").click()
    await page.locator("#restart").click()
    await expect(page.locator("#composer")).to_be_visible()
    await expect(page.locator("#access-code")).to_be_hidden()
    other = await context.new_page()
    await other.goto(f"{server}/c/{assistant['public_id']}")
    await expect(other.locator("#access-code")).to_be_visible()
    # Never in a URL: not in the page's address, and not in any request line the server logged.
    assert CODE not in page.url
    assert CODE.replace(" ", "%20") not in server_log.read_text() and CODE not in server_log.read_text()
    errors.assert_none()
    await context.close()


async def test_a_paused_link_shows_paused_and_works_again_when_resumed(browser, server, alice: Person):
    assistant = await library(alice, share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    await alice.request("PATCH", path, json={"paused": True})
    context, page = await new_page(browser)

    await page.goto(f"{server}/c#k={key_of(link)}")
    await expect(page.locator("#notice")).to_have_text(REFUSAL_MESSAGES[Refusal.LINK_PAUSED])
    await expect(page.locator("#composer")).to_be_hidden()

    await alice.request("PATCH", path, json={"paused": False})
    await page.reload()
    await wait_ready(page)
    assert SATURDAY in await ask(page, "Are you open on Saturdays?", replies=2)
    await context.close()
