"""The guest's language in a real browser: the chat page in each language, axe-core on each, the
refusal page in German, the page's language carried to the API, a private link following its
assistant's language, and the widget's data-lang. A real `portico serve` on each database."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.browser import browser, page_errors, run_axe  # noqa: F401  (browser: fixture)
from tests.conftest import Person, key_of
from tests.test_browser_widget import ClosedWidget, chat_frame, host_sites, widget_tag  # noqa: F401  (host_sites: fixture)

expect.set_options(timeout=10_000)
GREETING = "Hello! Ask me about opening hours."
KNOWLEDGE = "# Opening hours\nThe library is open from nine until five on weekdays.\n"
# The send button's accessible name, and what the page says under the composer, in each language.
PAGE_WORDS = {
    "en": ("Send message", "Conversations may be read by the assistant's owner."),
    "de": ("Nachricht senden", "Gespräche können vom Betreiber des Assistenten gelesen werden."),
    "fr": ("Envoyer le message", "Les conversations peuvent être lues par le propriétaire de l’assistant."),
    "es": ("Enviar mensaje", "El propietario del asistente puede leer las conversaciones."),
}


@pytest.fixture
def server(shared_server, app) -> str:
    return shared_server().url


async def library(owner: Person, **fields: object) -> dict:
    return await owner.new_assistant(
        **{"name": "Riverside Library", "greeting": GREETING, "knowledge": KNOWLEDGE, **fields}
    )


async def set_language(owner: Person, assistant: dict, language: str) -> None:
    base = f"/api/v1/assistants/{assistant['id']}"
    assert (await owner.request("PATCH", base, json={"settings": {"language": language}})).status_code == 200
    assert (await owner.request("POST", f"{base}/publish")).status_code == 201


def no_violations(found: list[dict]) -> None:
    assert not found, "axe found problems (printed above): " + ", ".join(f"{v['id']} ({v['impact']})" for v in found)


async def test_axe_finds_no_violation_on_the_chat_page_in_each_language_nor_on_the_german_refusal_page(
    browser, server, alice: Person
):
    assistant = await library(alice)
    offline = await library(alice, live=False)
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    found: list[dict] = []
    for language, (send, foot) in PAGE_WORDS.items():
        await page.goto(f"{server}/c/{assistant['public_id']}?lang={language}")
        await expect(page.locator("#log li.msg.assistant").first).to_contain_text(GREETING)
        assert await page.locator("html").get_attribute("lang") == language
        assert await page.locator("html").get_attribute("dir") == "ltr"
        await expect(page.get_by_role("button", name=send)).to_be_visible()
        await expect(page.locator("footer .foot")).to_contain_text(foot)
        found += await run_axe(page, f"chat page, {language}")

    await page.goto(f"{server}/c/{offline['public_id']}?lang=de")
    await expect(page.locator("#notice")).to_have_text(
        "Dieser Assistent ist gerade offline. Bitte versuchen Sie es später noch einmal."
    )
    assert await page.locator("html").get_attribute("lang") == "de"
    found += await run_axe(page, "refusal page, de")
    no_violations(found)
    await context.close()


async def test_the_page_asks_the_api_in_its_own_language_whatever_the_browser_speaks(browser, server, alice: Person):
    assistant = await library(alice)
    # A German browser on a link that asks for French: the page, and what the API says, are French.
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    assert await page.locator("html").get_attribute("lang") == "de"
    await page.goto(f"{server}/c/{assistant['public_id']}?lang=fr")
    await expect(page.locator("#log li.msg.assistant").first).to_contain_text(GREETING)
    await page.locator("#message").fill("Quand ouvrez-vous ?")
    await page.locator("#message").press("Enter")
    await expect(page.get_by_role("button", name="Terminer")).to_be_visible()
    await page.get_by_role("button", name="Terminer").click()
    await expect(page.locator("#notice")).to_have_text("Vous avez mis fin à cette conversation.")
    await expect(page.get_by_role("button", name="Commencer une nouvelle conversation")).to_be_visible()
    errors.assert_none()
    await context.close()


async def test_a_private_link_shows_its_assistants_language_and_keeps_its_key_out_of_the_url(
    browser, server, alice: Person
):
    assistant = await library(alice, share="private")
    await set_language(alice, assistant, "es")
    (link,) = await alice.new_links(assistant["id"], 0)
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    await page.goto(f"{server}/c#k={key_of(link)}")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await expect(page.get_by_role("button", name="Enviar mensaje")).to_be_visible()
    await expect(page.locator("#log li.msg.assistant").first).to_contain_text(GREETING)
    assert urlsplit(page.url).query == "lang=es" and page.url.endswith(f"#k={key_of(link)}")
    assert not [url for url in sent if key_of(link) in url.split("#")[0]], "the key went to the server in a URL"
    await context.close()


async def test_the_widget_speaks_its_data_lang_on_its_button_and_in_its_frame(
    browser, server, alice: Person, host_sites
):
    assistant = await library(alice)
    site = host_sites()
    url = site.page("/", "<main><h1>News</h1></main>" + widget_tag(server, assistant, title="Bibliothek", lang="de"))
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    widget = await ClosedWidget(page).start()
    await page.goto(url)
    await widget.click("button", "Chat öffnen: Bibliothek")
    frame = await chat_frame(page, assistant["widget_id"])
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(GREETING)
    assert await frame.locator("html").get_attribute("lang") == "de"
    await expect(frame.get_by_role("button", name="Nachricht senden")).to_be_visible()
    await widget.find("button", "Chat schließen")

    # Without data-lang: the browser's language on the button, and in the frame.
    site.page("/plain", "<main><h1>News</h1></main>" + widget_tag(server, assistant))
    await page.goto(site.origin + "/plain")
    await widget.click("button", "Ouvrir la discussion\u00a0: Discussion")
    frame = await chat_frame(page, assistant["widget_id"])
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(GREETING)
    assert await frame.locator("html").get_attribute("lang") == "fr"
    await context.close()
