"""The dashboard's forms and long names in a real browser (Debian Chromium), on SQLite.

- A failed form comes back with the wrong field focused and in view (not the top of the page), and a
  reload asks for the page rather than sending the form again.
- 200-character names without a space never make a page wider than the window.
- An assistant is deleted from its Settings page, with its name typed to confirm.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.chat_helpers import say
from tests.conftest import Person, key_of, start
from tests.test_browser_dashboard import DESKTOP, PHONE, db_name, owner_page, server, shot  # noqa: F401  (fixtures)

LONG = "W" * 200


async def signed_in(browser, server: str, person: Person):  # type: ignore[no-untyped-def]
    context, page, dialogs = await owner_page(browser, server)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("h1")).to_have_text("Assistants")
    return context, page, dialogs


async def in_view(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(
        await page.eval_on_selector(
            selector, "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
        )
    )


async def test_a_failed_form_focuses_its_wrong_field_in_view_and_a_reload_does_not_send_it_again(
    browser, server, app, alice: Person, db_name
):
    assistant = await alice.new_assistant(publish=False, live=False)
    context, page, _dialogs = await signed_in(browser, server, alice)
    errors = page_errors(page)
    behavior = f"{server}/dashboard/assistants/{assistant['id']}/behavior"
    await page.goto(behavior)

    # The Limits card is at the bottom of a long page.
    await page.locator("#tokens_per_day").fill("3000000000")
    await page.get_by_role("button", name="Save limits").click()
    await expect(page.locator("#tokens_per_day-error")).to_have_text("Tokens per day can be at most 2,000,000,000.")
    await expect(page.locator("#tokens_per_day")).to_be_focused()
    await expect(page.locator("#tokens_per_day")).to_have_value("3000000000")
    assert await in_view(page, "#tokens_per_day"), "the wrong field is out of sight"
    assert await page.evaluate("scrollY") > 0
    await shot(page, f"dashboard-form-error-{db_name}.png")
    # The address bar shows the page, so a reload asks for it (and the form is not sent again).
    assert page.url == behavior
    reloaded = await page.reload()
    assert reloaded is not None and reloaded.status == 200 and reloaded.request.method == "GET"
    await expect(page.locator("#tokens_per_day-error")).to_have_count(0)

    # A field in the middle of the other form, with the message at the top too.
    await page.locator("#inactivity_timeout").fill("5")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.locator("#inactivity_timeout")).to_be_focused()
    await expect(page.locator("#inactivity_timeout-error")).to_have_text(
        "The inactivity timeout must be at least 30 seconds."
    )
    assert await in_view(page, "#inactivity_timeout")
    errors.assert_none()
    await context.close()


async def test_long_names_never_make_a_page_wider_than_the_window(browser, server, app, alice: Person, client, db_name):
    assistant = await alice.new_assistant(name=LONG, description="D" * 300)
    base = f"/api/v1/assistants/{assistant['id']}"
    created = await alice.request("POST", f"{base}/links", json={"links": [{"name": LONG, "max_sessions": 3}]})
    assert created.status_code == 201, created.text
    session = (await start(client, key=key_of(created.json()["items"][0]))).json()
    assert (await say(client, session, "Opening hours?")).status_code == 200
    context, page, _dialogs = await signed_in(browser, server, alice)
    pages = {
        "list": "/dashboard",
        "behavior": f"/dashboard/assistants/{assistant['id']}/behavior",
        "logs": f"/dashboard/assistants/{assistant['id']}/logs",
        "transcript": f"/dashboard/assistants/{assistant['id']}/logs/{session['session_id']}",
        "metrics": f"/dashboard/assistants/{assistant['id']}/metrics?period=today",
        "settings": f"/dashboard/assistants/{assistant['id']}/settings",
    }
    too_wide = []
    for viewport in (DESKTOP, PHONE):
        await page.set_viewport_size(viewport)
        for name, path in pages.items():
            await page.goto(f"{server}{path}")
            width = await page.evaluate("document.documentElement.scrollWidth")
            if width > viewport["width"]:
                too_wide.append(f"{name} at {viewport['width']}: {width} px")
                await shot(page, f"dashboard-long-{name}-{viewport['width']}-{db_name}.png")
    assert too_wide == []

    # Where a name is cut short, its whole is in a tooltip.
    await page.goto(f"{server}{pages['logs']}")
    option = page.locator("#f-user option", has_text="WWW")
    assert await option.get_attribute("title") == LONG
    await page.goto(f"{server}{pages['metrics']}")
    cell = page.locator("section[aria-labelledby=users-title] tbody td").first
    assert (await cell.get_attribute("title")) == LONG or LONG in await cell.inner_text()
    await context.close()


async def test_an_assistant_is_deleted_from_settings_once_its_name_is_typed(
    browser, server, app, alice: Person, client, db_name
):
    assistant = await alice.new_assistant(name="Riverside Library")
    session = (await start(client, public_id=assistant["public_id"])).json()
    context, page, _dialogs = await signed_in(browser, server, alice)
    errors = page_errors(page)
    await page.get_by_role("link", name="Riverside Library").click()
    await page.locator("nav.tabs").get_by_role("link", name="Settings", exact=True).click()

    await page.get_by_label("Type the assistant's name to confirm").fill("Riverside")
    await page.get_by_role("button", name="Delete assistant").click()
    await expect(page.locator("#confirm_name-error")).to_have_text(
        "Type the assistant's name exactly as shown above to delete it."
    )
    await expect(page.locator("#confirm_name")).to_be_focused()
    await expect(page.locator("#confirm_name")).to_have_value("Riverside")
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201

    await page.locator("#confirm_name").fill("Riverside Library")
    await page.get_by_role("button", name="Delete assistant").click()
    await expect(page).to_have_url(re.compile(r"/dashboard\?done=deleted$"))
    await expect(page.locator(".flash")).to_have_text(
        "The assistant was deleted. Its links and its widget no longer work."
    )
    await expect(page.get_by_role("link", name="Riverside Library")).to_have_count(0)
    assert (await start(client, public_id=assistant["public_id"])).status_code == 404
    assert (await say(client, session, "Still there?")).status_code in (403, 404, 409, 410)
    errors.assert_none()
    await context.close()
