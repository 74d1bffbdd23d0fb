"""Duplicating an assistant from its Settings page lands on the copy (issue 21, item 15)."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.conftest import Person
from tests.test_browser_dash_pages import signed_in
from tests.test_browser_dashboard import db_name, server, shot  # noqa: F401  (fixtures)


async def test_the_settings_page_duplicates_an_assistant_and_lands_on_the_copy(
    browser, server, app, alice: Person, db_name
):
    assistant = await alice.new_assistant(name="Riverside Library", starters=["When are you open?"])
    context, page, _dialogs = await signed_in(browser, server, alice)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/settings")
    await page.get_by_role("button", name="Duplicate assistant").click()

    await expect(page).to_have_url(re.compile(r"/dashboard/assistants/\d+/behavior\?done=duplicated$"))
    assert f"/assistants/{assistant['id']}/" not in page.url
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Copy of Riverside Library")
    await expect(page.locator(".flash")).to_contain_text("This is the copy: unpublished and Offline")
    await expect(page.locator(".status-pill")).to_contain_text("Offline")
    await expect(page.locator(".status-pill")).to_contain_text("Not published yet")
    await expect(page.locator("#knowledge")).to_have_value(assistant["draft"]["knowledge"])
    await expect(page.locator("#starter-1")).to_have_value("When are you open?")
    await shot(page, f"duplicate-landed-{db_name}.png")
    errors.assert_none()
    await context.close()
