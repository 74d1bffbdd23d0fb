"""The Publish page shows what a Publish would change and who changed it (issue 21, item 10): an
Editor adds a starter question, and the Owner sees that line added and the Editor's name."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser import axe_source, browser, page_errors, run_axe, serious  # noqa: F401  (browser: fixture)
from tests.team_helpers import PASSWORD, make_team
from tests.test_browser_dashboard import DESKTOP, db_name, server, shot  # noqa: F401  (fixtures)


async def sign_in(browser, server: str, email: str, team_id: int):  # type: ignore[no-untyped-def]
    """Signed in and working in the team (each account also has a team of its own)."""
    context = await browser.new_context(viewport=DESKTOP)
    await context.add_init_script(axe_source())
    page = await context.new_page()
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Assistants")
    await page.get_by_label("Team", exact=True).select_option(str(team_id))
    await page.get_by_role("button", name="Switch").click()
    await expect(page.get_by_label("Team", exact=True)).to_have_value(str(team_id))
    return context, page


async def test_the_owner_sees_the_starter_an_editor_added_and_who_added_it(app, client, browser, server, db_name):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    assistant = await alice.new_assistant(name="Front desk", starters=["When are you open?"])

    editor_context, editor = await sign_in(browser, server, "ed@example.com", team.id)
    await editor.goto(f"{server}/dashboard/assistants/{assistant['id']}/behavior")
    await editor.locator("#starter-2").fill("Can I bring my dog?")
    await editor.get_by_role("button", name="Save draft").click()
    await expect(editor.get_by_role("status")).to_contain_text("Draft saved")
    await editor_context.close()

    context, page = await sign_in(browser, server, "alice@example.com", team.id)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/publish")
    starters = page.locator(".diff-field[data-field='starters']")
    await expect(starters.get_by_role("heading")).to_have_text("Starter questions")
    await expect(starters.locator("li.added")).to_have_text("+Added: Can I bring my dog?")
    await expect(starters.locator("li.same")).to_contain_text("When are you open?")
    await expect(page.locator(".draft-edits")).to_contain_text("ed@example.com: Draft edited (Changed: starters)")
    await shot(page, f"publish-diff-{db_name}.png")
    assert serious(await run_axe(page, "publish diff")) == []

    await page.get_by_role("button", name="Publish version 2").click()
    await expect(page.locator(".flash")).to_contain_text("Published version 2")
    await expect(page.locator(".card").first).to_contain_text("Nothing to publish")
    await expect(page.locator(".draft-diff")).to_have_count(0)
    await expect(page.get_by_role("button", name="Publish")).to_be_disabled()
    errors.assert_none()
    await context.close()
