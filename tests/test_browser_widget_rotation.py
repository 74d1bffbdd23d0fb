"""An embedded widget survives the owner rotating the public link; one with `data-key` survives
every rotation. In a real browser, on another origin, on SQLite."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of
from tests.test_browser_widget import (  # noqa: F401  (fixtures)
    ARTICLE,
    LIBRARY_GREETING,
    LIBRARY_KNOWLEDGE,
    SATURDAY,
    ask,
    chat_frame,
    db_name,
    host_sites,
    new_page,
    server,
    wait_panel,
    widget_tag,
)


async def test_the_widget_still_answers_after_the_public_link_is_rotated(browser, server, alice: Person, host_sites):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE
    )
    snippet = widget_tag(server, assistant, title="Riverside Library", open=None)
    rotated = await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/public-link/rotate")
    assert rotated.json()["public_id"] != assistant["public_id"]

    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(host_sites().page("/", ARTICLE + snippet))
    frame = await chat_frame(page, assistant["widget_id"])
    await wait_panel(frame, open_=True)
    # The frame's script has looked the assistant up (by the rotated ids) once its greeting shows:
    # typing before that could be lost to a page still loading.
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(LIBRARY_GREETING)
    assert SATURDAY in await ask(frame, "When are you open on Saturdays?", replies=2)
    errors.assert_none()
    await context.close()


async def test_a_widget_with_a_key_answers_through_every_rotation(browser, server, alice: Person, host_sites):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE, share="private"
    )
    (link,) = await alice.new_links(assistant["id"], 0)
    snippet = widget_tag(server, assistant, key=key_of(link), title="Riverside Library", open=None)
    base = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("POST", f"{base}/public-link/rotate")
    await alice.request("POST", f"{base}/widget-id/rotate")

    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(host_sites().page("/", ARTICLE + snippet))
    frame = await chat_frame(page, assistant["widget_id"])
    await wait_panel(frame, open_=True)
    # The frame's script has looked the assistant up (by the rotated ids) once its greeting shows:
    # typing before that could be lost to a page still loading.
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(LIBRARY_GREETING)
    assert SATURDAY in await ask(frame, "When are you open on Saturdays?", replies=2)
    links = (await alice.request("GET", f"{base}/links")).json()["items"]
    assert links[0]["sessions_used"] == 1
    errors.assert_none()
    await context.close()


async def test_an_old_snippet_after_a_widget_id_rotation_shows_no_bubble(browser, server, alice: Person, host_sites):
    assistant = await alice.new_assistant(name="Riverside Library", greeting=LIBRARY_GREETING)
    snippet = widget_tag(server, assistant, title="Riverside Library")
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/widget-id/rotate")

    context, page = await new_page(browser)
    async with page.expect_console_message(lambda m: "Portico widget" in m.text) as said:
        await page.goto(host_sites().page("/", ARTICLE + snippet))
    assert (
        f"no assistant has the widget id '{assistant['widget_id']}' (it may have been rotated)"
        in (await said.value).text
    )
    await page.wait_for_timeout(200)  # anything the loader would add comes right after its answer
    assert await page.locator("[data-portico-widget]").count() == 0
    await context.close()
