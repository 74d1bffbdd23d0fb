"""A team in a real browser (Debian Chromium) against a real `portico serve`, on SQLite.

The Owner invites an Editor by link; the Editor opens it, creates an account, creates and edits an
assistant and previews it, but finds Publish and Share greyed out with the reason; the Owner
publishes; the audit log shows what each of them did. Screenshots: tests/artifacts/teams-*.png.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser import ARTIFACTS, browser, page_errors  # noqa: F401  (browser: fixture)
from tests.team_helpers import PASSWORD

expect.set_options(timeout=10_000)
KNOWLEDGE = "# Homework\nHomework is due on Fridays before noon, handed in through the school portal."


@pytest.fixture
def db_name(settings) -> str:
    return "sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def server(shared_server, app) -> str:
    return shared_server(own_base_url=True).url


async def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled", caret="hide")


async def sign_in(page, server: str, email: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Assistants")


async def test_an_owner_invites_an_editor_who_edits_and_previews_but_cannot_publish(
    app, alice, browser, server, db_name
):
    owner_context = await browser.new_context()
    owner = await owner_context.new_page()
    owner_errors = page_errors(owner)
    await sign_in(owner, server, "alice@example.com")

    # The Owner makes an invitation link for an Editor.
    await owner.get_by_role("link", name="Team", exact=True).click()
    await owner.get_by_label("Role").select_option("editor")
    await owner.get_by_role("button", name="Create invitation link").click()
    link = await owner.locator("#new-invitation").input_value()
    assert "/dashboard/join#i=pti_" in link
    await shot(owner, f"teams-01-invitation-{db_name}.png")

    # The Editor opens it in another browser, creates an account and lands in the Owner's team.
    editor_context = await browser.new_context()
    editor = await editor_context.new_page()
    editor_errors = page_errors(editor)
    await editor.goto(link)
    # The page names the team and the role the invitation gives (issue 21, item 17).
    await expect(editor.get_by_role("heading", level=1)).to_have_text("Join Alice's team as Editor")
    await editor.get_by_label("Email").fill("ed@example.com")
    await editor.get_by_label("Password").fill(PASSWORD)
    await editor.get_by_label("Your name").fill("Ed")  # his own team is "Ed's team"
    await editor.get_by_role("button", name="Create an account and join").click()
    await expect(editor.get_by_role("status")).to_have_text("Welcome to the team.")
    await expect(editor.get_by_label("Team", exact=True)).to_have_value(await _team_id(alice))
    await expect(editor.locator("#current-team option:checked")).to_have_text("Alice's team (Editor)")
    await expect(editor.get_by_role("button", name="Create invitation link")).to_be_disabled()
    await shot(editor, f"teams-02-editor-team-{db_name}.png")
    await editor.get_by_role("link", name="Assistants").click()

    # The Editor creates an assistant, edits its draft and previews it.
    await editor.get_by_label("Name").fill("Homework helper")
    await editor.get_by_role("button", name="Create").click()
    await editor.locator("#knowledge").fill(KNOWLEDGE)
    await editor.get_by_role("button", name="Save draft").click()
    await expect(editor.get_by_role("status")).to_contain_text("Draft saved")
    await editor.get_by_role("navigation", name="Assistant").get_by_role("link", name="Preview").click()
    await editor.locator("#preview-message").fill("When is homework due?")
    await editor.get_by_role("button", name="Send").click()
    await expect(editor.locator("#preview-log")).to_contain_text("Fridays before noon")

    # Publish and Share are there, greyed out, saying why.
    await editor.get_by_role("navigation", name="Assistant").get_by_role("link", name="Publish").click()
    await expect(editor.locator(".role-reason")).to_contain_text(
        "Publishing or restoring a version needs the Admin or Owner role. Your role in Alice's team: Editor."
    )
    await expect(editor.locator("form[action$='/publish'] button")).to_be_disabled()
    await shot(editor, f"teams-03-editor-publish-{db_name}.png")
    await editor.get_by_role("navigation", name="Assistant").get_by_role("link", name="Share").click()
    await expect(editor.locator(".role-reason")).to_contain_text("needs the Admin or Owner role")
    await expect(editor.get_by_role("button", name="Save status")).to_be_disabled()
    await expect(editor.get_by_role("button", name="Rotate public link")).to_be_disabled()
    # ...but the Editor copies the public link and the embed code (issue 21, item 17).
    await editor_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    copy_link = editor.locator("button[data-copy='#public-url']")
    await expect(copy_link).to_have_accessible_name("Copy the public link")
    await expect(copy_link).to_be_enabled()
    await copy_link.click()
    await expect(copy_link).to_contain_text("Copied")
    assert "/c/" in await editor.evaluate("navigator.clipboard.readText()")
    await editor.get_by_role("button", name="Copy the embed code").click()
    assert 'data-assistant="' in await editor.evaluate("navigator.clipboard.readText()")
    await shot(editor, f"teams-04-editor-share-{db_name}.png")

    # The Owner sees the Editor's assistant and publishes it.
    await owner.goto(f"{server}/dashboard")
    await owner.get_by_role("link", name="Homework helper").click()
    await owner.get_by_role("navigation", name="Assistant").get_by_role("link", name="Publish").click()
    await owner.get_by_role("button", name="Publish version 1").click()
    await expect(owner.get_by_role("status")).to_contain_text("Published version 1")

    # The audit log shows both members' actions.
    await owner.get_by_role("link", name="Audit log").first.click()
    rows = owner.locator("table.audit tbody tr")
    await expect(rows.filter(has_text="ed@example.com").filter(has_text="Assistant created")).to_have_count(1)
    await expect(rows.filter(has_text="ed@example.com").filter(has_text="Member joined")).to_have_count(1)
    # The Editor's draft edit is in the log with the field it changed (issue 21, item 2).
    await expect(rows.filter(has_text="ed@example.com").filter(has_text="Draft edited")).to_contain_text("knowledge")
    await expect(rows.filter(has_text="alice@example.com").filter(has_text="Member invited")).to_have_count(1)
    await expect(rows.filter(has_text="alice@example.com").filter(has_text="Published")).to_have_count(1)
    await owner.get_by_label("Who").select_option(label="ed@example.com")
    await owner.get_by_role("button", name="Filter").click()
    await expect(rows.filter(has_text="alice@example.com")).to_have_count(0)
    await expect(rows).to_have_count(3)
    await shot(owner, f"teams-05-audit-{db_name}.png")

    # The Owner deletes the team, its name typed; the Editor is back in his own team.
    await owner.get_by_role("link", name="Team", exact=True).click()
    await expect(owner.locator("#delete-team-title + p")).to_contain_text("deletes its 1 assistant:")
    await owner.get_by_label("Type the team's name to confirm").fill("Alice's team")
    await owner.get_by_role("button", name="Delete team").click()
    await expect(owner.get_by_role("status")).to_contain_text("The team was deleted")
    # A new team of her own, named without her name (not kept): she may rename it.
    await expect(owner.locator("#current-team option:checked")).to_have_text("My team (Owner)")
    await expect(owner.get_by_role("link", name="Homework helper")).to_have_count(0)
    await editor.goto(f"{server}/dashboard")
    await expect(editor.locator("#current-team option:checked")).to_have_text("Ed's team (Owner)")
    await expect(editor.get_by_role("link", name="Homework helper")).to_have_count(0)
    await shot(owner, f"teams-06-deleted-{db_name}.png")
    owner_errors.assert_none()
    editor_errors.assert_none()
    await owner_context.close()
    await editor_context.close()


async def _team_id(person) -> str:  # type: ignore[no-untyped-def]
    return str((await person.request("GET", "/api/v1/team")).json()["id"])
