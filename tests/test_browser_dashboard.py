"""The dashboard in a real browser (Debian Chromium), against a real `portico serve`, on SQLite.

- The owner's story, from first-run setup to switching Offline, all through the dashboard, with guests
  chatting in their own browser contexts through the links the owner copied and downloaded.
- Every page: a title, one <h1>, the skip link first in the Tab order, no serious or critical axe-core
  finding, nothing scrolling sideways at 360 pixels (tables scroll inside their own .table-wrap).
- Markup in names is shown as text; the Preview tab streams a reply; Logs, a transcript and Metrics show
  what guests did.

Screenshots (full page) go to tests/artifacts/: dashboard-story-NN-*-<db>.png for the story, and
dashboard-<page>-<db>.png plus dashboard-<page>-phone-<db>.png (360 pixels wide) for every page.

axe-core is put in every page of the owner's context with `add_init_script` (outside the page's CSP), so
the contexts keep the real Content-Security-Policy and `page_errors` still catches violations.

Copy buttons: the contexts are granted clipboard-read and clipboard-write for the server's origin
(http://127.0.0.1 is a secure context), and the test reads the real clipboard.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from tests.browser import ARTIFACTS, axe_source, browser, page_errors, run_axe, serious  # noqa: F401  (browser: fixture)
from tests.chat_helpers import say
from tests.conftest import Person, key_of, start

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
INSTRUCTIONS = "Answer in one or two friendly sentences. If the notes do not say, say you do not know."
SATURDAY = "from ten until two on Saturdays"
MILL_STREET = "The entrance is on Mill Street."
REVOKED = "This link has been turned off by the assistant's owner."
KEY_REQUIRED = "This assistant is private. Open it with the personal link you were given."
OFFLINE = "offline right now"
EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"
MARKUP = "<script>alert(1)</script>"

expect.set_options(timeout=10_000)  # generous for a loaded machine; passing runs never wait this long
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def db_name(settings) -> str:
    return "sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def server(shared_server, app) -> str:
    """A real server whose base URL is its own address, so the links the dashboard shows, copies and
    puts in CSV files open as they are."""
    return shared_server(own_base_url=True).url


# Helpers ------------------------------------------------------------------------------------------


async def owner_page(browser, server: str):  # type: ignore[no-untyped-def]
    """A context for the owner: axe-core preloaded, the clipboard allowed, dialogs accepted and kept."""
    context = await browser.new_context(viewport=DESKTOP)
    await context.add_init_script(axe_source())
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = await context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
        dialogs.append(f"{dialog.type}: {dialog.message}")
        asyncio.ensure_future(dialog.accept())

    page.on("dialog", on_dialog)
    return context, page, dialogs


async def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled", caret="hide")


class Inspector:
    """Checks a dashboard page the same way each time and keeps every problem, to report them all."""

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.problems: list[str] = []

    async def __call__(self, page, name: str) -> None:  # type: ignore[no-untyped-def]
        title = (await page.title()).strip()
        if not title or title.startswith("·"):
            self.problems.append(f"{name}: no clear <title> ({title!r})")
        headings = await page.locator("h1").all_inner_texts()
        if len(headings) != 1 or not headings[0].strip():
            self.problems.append(f"{name}: expected one non-empty <h1>, found {headings!r}")
        # Keyboard: the first Tab lands on the skip link, which then shows on screen.
        await page.evaluate(FROM_THE_TOP)
        await page.keyboard.press("Tab")
        skip = page.locator("a.skip").first
        if not await skip.evaluate("a => a === document.activeElement"):
            self.problems.append(f"{name}: the first Tab did not reach 'Skip to content'")
        elif not await skip.is_visible() or (await skip.bounding_box() or {"x": -1})["x"] < 0:
            self.problems.append(f"{name}: the focused skip link is not on screen")
        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        for violation in serious(await run_axe(page, f"{name} ({self.db_name})")):
            self.problems.append(f"{name}: axe {violation['impact']} {violation['id']}: {violation['help']}")
        await shot(page, f"dashboard-{name}-{self.db_name}.png")
        await page.set_viewport_size(PHONE)
        try:
            width = await page.evaluate("() => document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                wide = await page.evaluate(WIDEST)
                self.problems.append(f"{name}: {width}px wide at {PHONE['width']}px; widest: {wide}")
            for violation in serious(await run_axe(page, f"{name}, phone ({self.db_name})")):
                self.problems.append(
                    f"{name} (phone): axe {violation['impact']} {violation['id']}: {violation['help']}"
                )
            await shot(page, f"dashboard-{name}-phone-{self.db_name}.png")
        finally:
            await page.set_viewport_size(DESKTOP)

    def assert_none(self) -> None:
        assert not self.problems, "dashboard pages have problems:\n" + "\n".join(self.problems)


# Moves the keyboard's starting point back to the top of the page, as when it has just loaded.
FROM_THE_TOP = """() => {
  window.scrollTo(0, 0);
  document.body.tabIndex = -1;
  document.body.focus();
  document.body.removeAttribute('tabindex');
}"""

# What sticks out past the right edge, outside a scrolling .table-wrap (for the failure message).
WIDEST = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const clipped = el.closest('.table-wrap') && !el.classList.contains('table-wrap');
    if (clipped && getComputedStyle(el).position !== 'absolute') continue;
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1) out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')} right=${Math.round(r.right)}`);
  }
  return out.slice(0, 8).join(', ');
}"""


async def wait_ready(page, greeting: str = GREETING) -> None:  # type: ignore[no-untyped-def]
    await expect(page.locator("#log li.msg.assistant").first).to_contain_text(greeting)


async def ask(page, text: str, replies: int) -> str:  # type: ignore[no-untyped-def]
    """On the chat page: sends `text` with Enter, waits for the whole reply and returns it."""
    box = page.locator("#message")
    await box.fill(text)
    await box.press("Enter")
    await expect(page.locator("#log li.msg.guest").last).to_contain_text(text)
    await page.wait_for_function(
        """n => document.querySelectorAll('#log li.msg.assistant').length === n
                && !document.querySelector('#log li.typing') && !document.getElementById('send').disabled""",
        arg=replies,
    )
    return await page.locator("#log li.msg.assistant").last.evaluate(
        "li => li.querySelector('.text').textContent.trim()"
    )


async def guest_page(browser):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    return context, page, page_errors(page)


async def flash(page, text: str) -> None:  # type: ignore[no-untyped-def]
    await expect(page.locator(".flash")).to_contain_text(text)


async def tab(page, label: str) -> None:  # type: ignore[no-untyped-def]
    await page.locator("nav.tabs").get_by_role("link", name=label, exact=True).click()
    await expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text(label)


async def tab_to(page, target, limit: int = 12) -> list[str]:  # type: ignore[no-untyped-def]
    """Presses Tab until `target` has the focus; returns what got the focus on the way."""
    seen = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return seen
        seen.append(await page.evaluate("() => document.activeElement.outerHTML.slice(0, 80)"))
    raise AssertionError(f"Tab never reached the target; focus went: {seen}")


# 1 ------------------------------------------------------------------------------------------------


async def test_the_owner_story_from_first_run_to_every_link_refused(browser, server, app, db_name):
    inspect = Inspector(db_name)
    context, page, dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    step = iter(range(1, 100))

    async def story_shot(name: str) -> None:
        await shot(page, f"dashboard-story-{next(step):02d}-{name}-{db_name}.png")

    # First run: no owner yet, so the dashboard sends the first visitor to setup.
    await page.goto(f"{server}/dashboard")
    await expect(page).to_have_url(f"{server}/dashboard/setup")
    await expect(page.locator("h1")).to_have_text("Welcome to Portico")
    await expect(page.locator("header nav")).to_have_count(0)
    await inspect(page, "setup")
    await story_shot("setup")
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(f"{server}/dashboard")
    await expect(page.locator("h1")).to_have_text("Assistants")
    await expect(page.locator(".card.empty")).to_contain_text("No assistants yet")
    await story_shot("assistants-empty")
    await page.goto(f"{server}/dashboard/setup")  # once there is an owner, setup is closed
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))

    # Sign out, then sign in with the keyboard only.
    await page.goto(f"{server}/dashboard")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{server}/dashboard/sign-in")
    await inspect(page, "sign-in")
    await page.reload()
    passed = await tab_to(page, page.locator("#email"), limit=4)
    assert len(passed) <= 2, f"too many stops before the email field: {passed}"
    await page.keyboard.type(EMAIL)
    await page.keyboard.press("Tab")
    await expect(page.locator("#password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server}/dashboard")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Create an assistant: it opens on Behavior.
    await page.get_by_label("Name").fill("Riverside Library")
    await page.get_by_role("button", name="Create", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/dashboard/assistants/\d+/behavior$"))
    assistant_id = int(re.search(r"/assistants/(\d+)/", page.url).group(1))
    base = f"{server}/dashboard/assistants/{assistant_id}"
    await expect(page.locator("h1")).to_contain_text("Riverside Library")
    await expect(page.locator(".status-pill")).to_contain_text("Offline")
    await expect(page.locator("#openai-fields")).to_be_hidden()  # the built-in engine needs none of them

    # Behavior.
    await page.locator("#description").fill(DESCRIPTION)
    await page.locator("#greeting").fill(GREETING)
    await page.locator("#instructions").fill(INSTRUCTIONS)
    await page.locator("#knowledge").fill(KNOWLEDGE)
    await expect(page.locator("#greeting_enabled")).to_be_checked()
    await page.locator("#engine-openai").check()
    await expect(page.locator("#openai-fields")).to_be_visible()
    await story_shot("behavior-openai-fields")
    await page.locator("#engine-builtin").check()
    await expect(page.locator("#openai-fields")).to_be_hidden()
    await page.get_by_role("button", name="Save draft").click()
    await flash(page, "Draft saved")
    await expect(page.locator("#knowledge")).to_have_value(KNOWLEDGE)
    await expect(page.locator(".status-pill")).to_contain_text("Not published yet")
    await story_shot("behavior-saved")

    # Publish.
    await tab(page, "Publish")
    await page.get_by_role("button", name="Publish version 1").click()
    await flash(page, "Published version 1")
    await expect(page.locator(".status-pill")).not_to_contain_text("Unpublished")
    await expect(page.get_by_role("button", name=re.compile("^Publish"))).to_be_disabled()
    await story_shot("published")

    # Share: go Live and copy the public link.
    await tab(page, "Share")
    await page.locator("#status-live").check()
    await page.get_by_role("button", name="Save status").click()
    await flash(page, "Status saved")
    await expect(page.locator(".status-pill")).to_contain_text("Live")
    public_url = await page.locator("#public-url").input_value()
    assert re.fullmatch(re.escape(server) + r"/c/[A-Za-z0-9_-]+", public_url), public_url
    copy = page.locator('button[data-copy="#public-url"]')
    await copy.click()
    await expect(copy).to_have_text("Copied")
    copied = await page.evaluate("() => navigator.clipboard.readText()")
    assert copied == public_url
    await story_shot("share-live-public")

    # A guest opens the copied link in another browser context and chats.
    guest, guest_tab, guest_errors = await guest_page(browser)
    await guest_tab.goto(copied)
    await wait_ready(guest_tab)
    await expect(guest_tab.locator("#name")).to_have_text("Riverside Library")
    assert SATURDAY in await ask(guest_tab, "When are you open on Saturdays?", replies=2)
    await shot(guest_tab, f"dashboard-story-{next(step):02d}-guest-public-chat-{db_name}.png")

    # Private: the public link stops admitting new visitors.
    await page.locator("#mode-private").check()
    await page.get_by_role("button", name="Save sharing").click()
    await flash(page, "Share settings saved")
    await expect(page.locator("#public-url")).to_have_count(0)
    stranger, stranger_tab, stranger_errors = await guest_page(browser)
    await stranger_tab.goto(public_url)
    await expect(stranger_tab.locator("#notice")).to_have_text(KEY_REQUIRED)
    await expect(stranger_tab.locator("#composer")).to_be_hidden()

    # 30 users from a pasted list.
    names = [f"Student {n:02d}" for n in range(1, 31)]
    await page.locator("details.create summary").click()
    await page.get_by_label("Names, one per line").fill("\n".join(names))
    await page.get_by_label("Maximum sessions for each (unless the line says)").fill("3")
    await page.get_by_role("button", name="Create links").click()
    await expect(page.locator("#new-title")).to_have_text("30 new links")
    await expect(page.locator(".counter")).to_have_text("30 of 50 private links")
    await expect(page.locator("table.users tbody tr")).to_have_count(30)
    await story_shot("share-30-users")

    # Download them as CSV.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download these as CSV (name, link)").click()
    download = await info.value
    assert download.suggested_filename.startswith("portico-users-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["name", "link"]
    assert [r[0] for r in rows[1:]] == names
    links = dict(rows[1:])
    assert all(url.startswith(f"{server}/c#k=") for url in links.values())
    assert len(set(links.values())) == 30
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download all links as CSV").click()
    everything = list(csv.reader(io.StringIO(Path(await (await info.value).path()).read_text(encoding="utf-8"))))
    assert dict(everything[1:]) == links
    row = page.locator("table.users tbody tr", has_text="Student 07")
    assert await row.locator("input.mono").input_value() == links["Student 07"]

    # One user opens their link in a guest context and chats.
    user, user_tab, user_errors = await guest_page(browser)
    await user_tab.goto(links["Student 07"])
    await wait_ready(user_tab)
    await expect(user_tab.locator("#uses")).to_have_text("Your link has 3 sessions left.")
    assert MILL_STREET in await ask(user_tab, "Where do I park?", replies=2)
    await shot(user_tab, f"dashboard-story-{next(step):02d}-guest-private-chat-{db_name}.png")

    # The owner deletes that user with the keyboard: Tab to Delete, Enter, confirm.
    await page.goto(f"{base}/share")
    row = page.locator("table.users tbody tr", has_text="Student 07")
    await expect(row).to_contain_text("1 / 3")
    await row.locator("input.mono").focus()
    delete = row.get_by_role("button", name="Delete Student 07")
    # The row's actions are behind its Manage button: Tab to it (past Copy), Enter opens the menu,
    # then past the QR code, rename, cap, pause, reset, the end date (three stops), reissue.
    await tab_to(page, row.get_by_text("Manage"), limit=3)
    await page.keyboard.press("Enter")
    await tab_to(page, delete, limit=20)
    await page.keyboard.press("Enter")
    await flash(page, "User deleted")
    assert dialogs == [
        "confirm: Delete Student 07? This revokes access immediately. Past sessions stay in Logs under this name."
    ]
    await expect(page.locator("table.users tbody tr")).to_have_count(29)
    await expect(page.locator("table.users")).not_to_contain_text("Student 07")
    await expect(page.locator(".counter")).to_have_text("29 of 50 private links")
    await story_shot("share-user-deleted")

    # The deleted user's next message is refused, and so is opening the link again.
    await user_tab.locator("#message").fill("And returning books?")
    await user_tab.locator("#message").press("Enter")
    await expect(user_tab.locator("#notice")).to_contain_text(REVOKED)
    await expect(user_tab.locator("#message")).to_have_value("And returning books?")  # kept, not lost
    await expect(user_tab.locator("#send")).to_be_disabled()
    await shot(user_tab, f"dashboard-story-{next(step):02d}-guest-revoked-{db_name}.png")
    await user_tab.reload()
    await expect(user_tab.locator("#notice")).to_have_text(REVOKED)

    # Offline: every link is refused.
    await page.locator("#status-offline").check()
    await page.get_by_role("button", name="Save status").click()
    await flash(page, "Status saved")
    await expect(page.locator(".status-pill")).to_contain_text("Offline")
    await expect(page.locator(".alert").first).to_contain_text("none of its 29 private links work")
    await story_shot("share-offline")

    await guest_tab.locator("#message").fill("And on Sundays?")  # the first guest, still on the page
    await guest_tab.locator("#message").press("Enter")
    await expect(guest_tab.locator("#notice")).to_contain_text(OFFLINE)
    for url in (public_url, links["Student 01"], links["Student 30"], links["Student 07"]):
        await stranger_tab.goto("about:blank")
        await stranger_tab.goto(url)
        await expect(stranger_tab.locator("#notice")).to_contain_text(OFFLINE)
        await expect(stranger_tab.locator("#composer")).to_be_hidden()
    await shot(stranger_tab, f"dashboard-story-{next(step):02d}-guest-offline-{db_name}.png")
    async with httpx.AsyncClient(base_url=server) as http:
        for name, url in [("public", public_url), *links.items()]:
            body = {"public_id": url.rsplit("/", 1)[1]} if name == "public" else {"key": url.split("#k=", 1)[1]}
            refused = await http.post("/api/v1/chat/sessions", json=body)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "assistant_offline", (
                name,
                refused.text,
            )

    for collector in (errors, guest_errors, stranger_errors, user_errors):
        collector.assert_none()
    inspect.assert_none()
    for ctx in (guest, stranger, user, context):
        await ctx.close()


# 2 ------------------------------------------------------------------------------------------------


USERS = [
    ("Year 9 Biology, group A (Tuesday and Thursday afternoons)", 3),
    ("Ms. Okafor's tutoring group", 3),
    ("Parents' evening", 1),
    ("Jamie", 0),
    ("Visiting examiners", 5),
    ("Staff room", 0),
]


async def chats(owner: Person, http: httpx.AsyncClient, assistant: dict) -> list[dict]:
    """Private users, guest sessions on most of them, and a few refusals at the gate."""
    body = {"links": [{"name": name, "max_sessions": cap} for name, cap in USERS]}
    response = await owner.request("POST", f"/api/v1/assistants/{assistant['id']}/links", json=body)
    assert response.status_code == 201, response.text
    links = response.json()["items"]
    questions = [
        ["When are you open on Saturdays?", "Where do I park?"],
        ["Where do I park?"],
        ["How do I return books?"],
        ["When are you open on Saturdays?", "Is there parking?", "Thanks!"],
    ]
    for link, said in zip(links, questions, strict=False):
        session = (await start(http, key=key_of(link))).json()
        for text in said:
            assert (await say(http, session, text)).status_code == 200
    await http.post(
        f"/api/v1/chat/sessions/{session['session_id']}/end", headers={"Authorization": f"Bearer {session['token']}"}
    )
    assert (await start(http, key=key_of(links[2]))).json()["error"]["code"] == "link_exhausted"
    assert (await start(http, public_id=assistant["public_id"])).json()["error"]["code"] == "key_required"
    return links


async def test_every_page_has_a_title_works_by_keyboard_and_at_360_pixels_and_passes_axe(
    browser, server, app, alice: Person, client: httpx.AsyncClient, db_name
):
    inspect = Inspector(db_name)
    assistant = await alice.new_assistant(
        name="Riverside Library", description=DESCRIPTION, greeting=GREETING, knowledge=KNOWLEDGE, share="private"
    )
    await alice.new_assistant(name="Biology tutor", description="Cells, genes and ecosystems for Year 9.", live=False)
    await alice.new_assistant(name="Interview practice", publish=False, live=False)
    path = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", path, json={"instructions": INSTRUCTIONS})).status_code == 200
    assert (await alice.request("POST", f"{path}/publish")).status_code == 201
    assert (await alice.request("PATCH", path, json={"greeting": GREETING + " "})).status_code == 200  # unpublished
    await chats(alice, client, assistant)
    base = f"{server}/dashboard/assistants/{assistant['id']}"

    context, page, dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard")
    await expect(page).to_have_url(f"{server}/dashboard/sign-in?next=/dashboard")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server}/dashboard")

    await expect(page.locator("tbody tr")).to_have_count(3)
    await inspect(page, "assistants")

    await page.goto(f"{base}/behavior")
    await inspect(page, "behavior")
    await page.goto(f"{base}/publish")
    await expect(page.locator("tbody tr")).to_have_count(2)  # two versions, and a newer draft
    await expect(page.get_by_role("button", name="Publish version 3")).to_be_enabled()
    await inspect(page, "publish")

    # Preview: a message gets a streamed reply from the draft.
    await page.goto(f"{base}/preview")
    await page.locator("#preview-message").fill("When are you open on Saturdays?")
    await page.locator("#preview-message").press("Enter")
    await expect(page.locator("#preview-log li.guest")).to_have_text("When are you open on Saturdays?")
    turns = page.locator("#preview-log > li")
    await expect(turns).to_have_count(3)
    await expect(turns.nth(0)).to_have_class("assistant")  # the greeting comes first, as guests see it
    await expect(turns.nth(0)).to_have_text(GREETING)
    await expect(turns.nth(1)).to_have_class("guest")
    await expect(page.locator("#preview-log li.assistant").last).to_contain_text(SATURDAY)
    await expect(page.locator("#preview-error")).to_be_hidden()
    await inspect(page, "preview")

    await page.goto(f"{base}/share")
    await expect(page.locator("table.users tbody tr")).to_have_count(len(USERS))
    await expect(page.locator("table.users")).to_contain_text("1 / 1")
    await inspect(page, "share")

    # Logs, after the guests' chats and the preview: open a transcript from the list.
    await page.goto(f"{base}/logs")
    await expect(page.locator("tbody tr")).to_have_count(5)  # four guests and the preview
    await expect(page.locator("tbody")).to_contain_text("Owner preview")
    await inspect(page, "logs")
    await page.locator("tbody tr", has_text=USERS[0][0]).get_by_role("link").click()
    await expect(page).to_have_url(re.compile(r"/logs/\d+$"))
    await expect(page.locator("ol.transcript > li")).to_have_count(4)  # two questions, two answers
    await expect(page.locator("ol.transcript")).to_contain_text("Where do I park?")
    await expect(page.locator("ol.transcript")).to_contain_text(MILL_STREET)
    await inspect(page, "transcript")

    # Metrics: charts drawn as images with their numbers beside them.
    await page.goto(f"{base}/metrics?period=today")
    charts = page.locator("svg[role=img]")
    await expect(charts).to_have_count(5)  # sessions, messages, shares rated up and down, refusals
    for i in range(5):
        assert (await charts.nth(i).locator("rect").count()) >= 1
        assert await charts.nth(i).get_attribute("aria-labelledby")
    await expect(page.locator(".stats")).to_contain_text("Sessions")
    stats = dict(
        zip(
            await page.locator(".stats dt").all_inner_texts(),
            await page.locator(".stats dd").all_inner_texts(),
            strict=True,
        )
    )
    assert stats["Sessions"] == "4" and stats["Refusals at the gate"] == "2", stats  # the preview is no guest session
    await expect(page.locator("details.numbers")).to_have_count(3)
    await page.locator("details.numbers summary").first.click()
    await expect(page.locator("details.numbers table").first).to_be_visible()
    refusals = page.locator("table.numbers-table", has_text="Refusals")
    await expect(refusals).to_contain_text("Exhausted")
    await expect(refusals).to_contain_text("Key required")
    await expect(page.locator("section[aria-labelledby=users-title] tbody tr")).to_have_count(len(USERS))
    await inspect(page, "metrics")
    await page.goto(f"{base}/unanswered")
    await expect(page.get_by_role("heading", level=2)).to_contain_text("no good answer")
    await inspect(page, "unanswered")
    await page.goto(f"{base}/settings")
    await expect(page.get_by_role("button", name="Delete assistant")).to_be_visible()
    await inspect(page, "settings")

    await page.goto(f"{server}/dashboard/tokens")
    await page.get_by_label("What is it for?").fill("Grading script")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#new-token")).to_have_value(re.compile(r"^\S{20,}$"))
    await inspect(page, "tokens")
    await page.goto(f"{server}/dashboard/account")
    await inspect(page, "account")

    response = await page.goto(f"{server}/dashboard/assistants/999999/share")
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    await inspect(page, "not-found")

    signed_out, signed_out_page, _ = await owner_page(browser, server)
    await signed_out_page.goto(f"{server}/dashboard/sign-in")
    await inspect(signed_out_page, "sign-in-returning")
    await signed_out.close()

    assert dialogs == []
    errors.assert_none()
    inspect.assert_none()
    await context.close()


# 3 ------------------------------------------------------------------------------------------------


async def test_markup_in_names_is_shown_as_text_everywhere(browser, server, app, alice: Person, client, db_name):
    context, page, dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()

    await page.get_by_label("Name").fill(MARKUP)
    await page.get_by_role("button", name="Create", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/behavior$"))
    base = page.url.rsplit("/", 1)[0]
    await page.locator("#knowledge").fill(KNOWLEDGE)
    await page.locator("#description").fill('"><img src=x onerror=alert(2)>')
    await page.get_by_role("button", name="Save draft").click()
    await flash(page, "Draft saved")
    await tab(page, "Publish")
    await page.get_by_role("button", name="Publish version 1").click()
    await tab(page, "Share")
    await page.locator("#status-live").check()
    await page.get_by_role("button", name="Save status").click()
    await flash(page, "Status saved")
    await page.locator("details.create summary").click()
    await page.get_by_label("Name", exact=True).fill(MARKUP)
    await page.get_by_role("button", name="Create link", exact=True).click()
    await expect(page.locator("#new-title")).to_have_text("1 new link")
    key = (await page.locator("table.users input.mono").input_value()).split("#k=", 1)[1]
    session = (await start(client, key=key)).json()
    assert (await say(client, session, MARKUP)).status_code == 200

    for path, where in [
        ("/dashboard", "tbody"),
        (f"{base}/share", "table.users"),
        (f"{base}/logs", "tbody"),
        (f"{base}/logs/{session['session_id']}", "ol.transcript"),
        (f"{base}/metrics?period=today", "section[aria-labelledby=users-title]"),
    ]:
        await page.goto(path if path.startswith("http") else f"{server}{path}")
        if path != "/dashboard":
            await expect(page.locator("h1")).to_contain_text(MARKUP)
        await expect(page.locator(where).get_by_text(MARKUP, exact=True).first).to_be_visible()
        assert await page.locator("script:not([src])").count() == 0
        # The Share page's own pictures are the QR codes; any other <img> came from a name.
        assert await page.locator("img:not(.qr-code)").count() == 0
        await page.wait_for_timeout(50)  # an injected alert would have shown by now
    await expect(page).to_have_title(re.compile(re.escape(MARKUP)))
    await shot(page, f"dashboard-markup-{db_name}.png")
    assert dialogs == [], f"a name ran as script: {dialogs}"
    errors.assert_none()
    await context.close()
