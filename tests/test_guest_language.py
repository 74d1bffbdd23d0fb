"""The guest's language: the chat page, its frame and the guest API answer in it; owners stay in English.

The page's language is `?lang=` (the widget's `data-lang` arrives so), else the assistant's own
language (`settings.language`, published with the version), else `Accept-Language`, else English.
"""

from __future__ import annotations

import json
import re

import pytest

from portico.access.ratelimit import RateLimited
from portico.kit import i18n
from tests.chat_helpers import bearer
from tests.conftest import Person, key_of, start
from tests.test_dashboard_pages import BEHAVIOR, field_errors, new_assistant, web  # noqa: F401 (web: fixture)

GERMAN_PAGE = "Nachricht senden"  # the send button's label
FRENCH_PAGE = "Envoyer le message"
SPANISH_PAGE = "Enviar mensaje"
ENGLISH_PAGE = "Send message"


def html_lang(page: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]*)" dir="([^"]*)">', page)
    assert found, page[:200]
    return found.group(1), found.group(2)


async def with_language(owner: Person, assistant: dict, language: str | None, *, publish: bool = True) -> None:
    base = f"/api/v1/assistants/{assistant['id']}"
    patched = await owner.request("PATCH", base, json={"settings": {"language": language}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["draft"]["settings"]["language"] == language
    if publish:
        assert (await owner.request("POST", f"{base}/publish")).status_code == 201


async def test_lang_de_shows_the_german_chat_page(client, alice: Person):
    assistant = await alice.new_assistant()
    page = await client.get(f"/c/{assistant['public_id']}", params={"lang": "de"})
    assert page.status_code == 200
    assert html_lang(page.text) == ("de", "ltr")
    assert GERMAN_PAGE in page.text and "Gespräche können vom Betreiber" in page.text
    assert ENGLISH_PAGE not in page.text
    # The sentence for a lost connection, which the page's script shows, is German too.
    assert 'data-network-message="Die Verbindung wurde unterbrochen.' in page.text


async def test_each_step_of_the_choice_gives_way_to_the_one_before(client, alice: Person):
    assistant = await alice.new_assistant()
    url = f"/c/{assistant['public_id']}"
    spanish_browser = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}

    # Nothing asked: English.
    assert html_lang((await client.get(url)).text)[0] == "en"
    # The browser's language.
    assert html_lang((await client.get(url, headers=spanish_browser)).text)[0] == "es"
    # The assistant's own language beats the browser's, once published (a draft changes nothing).
    await with_language(alice, assistant, "de", publish=False)
    assert html_lang((await client.get(url, headers=spanish_browser)).text)[0] == "es"
    await with_language(alice, assistant, "de")
    page = await client.get(url, headers=spanish_browser)
    assert html_lang(page.text)[0] == "de" and GERMAN_PAGE in page.text
    # The link's `?lang=` beats both.
    page = await client.get(url, params={"lang": "fr"}, headers=spanish_browser)
    assert html_lang(page.text)[0] == "fr" and FRENCH_PAGE in page.text
    # An unknown or hostile `?lang=` falls back along the chain, and is never echoed.
    for bad in ("xx", "<script>alert(1)</script>", "", "de" * 500):
        page = await client.get(url, params={"lang": bad}, headers=spanish_browser)
        assert html_lang(page.text)[0] == "de", bad
        assert "<script>alert" not in page.text
    # A region picks its language; an unknown browser language falls to the assistant's, then English.
    assert html_lang((await client.get(url, params={"lang": "fr-CA"})).text)[0] == "fr"
    await with_language(alice, assistant, None)
    assert html_lang((await client.get(url, headers={"Accept-Language": "ja, *;q=0.1"})).text)[0] == "en"
    assert html_lang((await client.get(url, headers={"Accept-Language": "ja, fr;q=0.3, es;q=0.8"})).text)[0] == "es"


async def test_the_widget_frame_takes_its_data_lang_and_the_loader_carries_its_words(client, alice: Person):
    assistant = await alice.new_assistant()
    await with_language(alice, assistant, "fr")
    frame = f"/c/{assistant['widget_id']}"
    # The loader passes data-lang to its frame as ?lang=; without it, the assistant's language.
    page = await client.get(frame, params={"embed": "1", "lang": "es"})
    assert html_lang(page.text)[0] == "es" and SPANISH_PAGE in page.text
    assert html_lang((await client.get(frame, params={"embed": "1"})).text)[0] == "fr"

    loader = (await client.get("/widget.js")).text
    assert '"&lang=" + encodeURIComponent(d.lang)' in loader
    words = json.loads(re.search(r"var WORDS = (\{.*?\}\});", loader).group(1))
    assert words["de"] == {"close": "Chat schließen", "open": "Chat öffnen: {title}", "title": "Chat"}
    assert words["fr"]["close"] == "Fermer la discussion" and words["en"]["close"] == "Close chat"
    assert set(words) == set(i18n.LANGUAGES)


async def test_a_refusal_comes_in_french_over_the_api_with_its_code_in_english(client, alice: Person):
    assistant = await alice.new_assistant()
    assert (
        await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    ).status_code == 200
    french = {"Accept-Language": "fr"}
    refused = await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]}, headers=french)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "assistant_offline",
        "message": "Cet assistant est hors ligne pour le moment. Veuillez réessayer plus tard.",
    }
    unknown = await start(client, public_id="no-such-assistant")
    assert unknown.json()["error"]["message"].startswith("This assistant does not exist.")
    unknown = await client.post("/api/v1/chat/sessions", json={"public_id": "nope"}, headers=french)
    assert unknown.json()["error"] == {
        "code": "not_found",
        "message": "Cet assistant n’existe pas. Le lien a peut-être été modifié ou supprimé.",
    }


async def test_the_refusal_page_is_in_the_guests_language(client, alice: Person):
    assistant = await alice.new_assistant(live=False)
    page = await client.get(f"/c/{assistant['public_id']}", params={"lang": "de"})
    assert page.status_code == 403
    assert html_lang(page.text)[0] == "de"
    assert "Dieser Assistent ist gerade offline. Bitte versuchen Sie es später noch einmal." in page.text
    missing = await client.get("/c/no-such-assistant", headers={"Accept-Language": "de-DE"})
    assert missing.status_code == 404
    assert '<h1 id="name">Nicht verfügbar</h1>' in missing.text
    assert "Diesen Assistenten gibt es nicht." in missing.text


async def test_sessions_left_are_counted_and_worded_for_the_language(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    many, one = await alice.new_links(assistant["id"], 1500, 1)

    async def uses(link: dict, language: str) -> str:
        found = await client.post(
            "/api/v1/chat/lookup", json={"key": key_of(link)}, headers={"Accept-Language": language}
        )
        assert found.status_code == 200, found.text
        return found.json()["link"]["uses_message"]

    assert await uses(many, "en") == "Your link has 1,500 sessions left."
    assert await uses(many, "de") == "Ihr Link hat noch 1.500 Sitzungen."
    assert await uses(many, "fr") == "Il reste 1\u202f500 sessions sur votre lien."
    assert await uses(one, "de") == "Ihr Link hat noch 1 Sitzung."
    assert await uses(one, "es") == "A su enlace le queda 1 sesión."
    started = await client.post("/api/v1/chat/sessions", json={"key": key_of(many)}, headers={"Accept-Language": "es"})
    assert started.json()["link"]["uses_message"] == "Después de esta, a su enlace le quedan 1.499 sesiones más."


async def test_an_ending_and_a_too_long_message_are_in_the_guests_language(client, alice: Person):
    assistant = await alice.new_assistant(settings={"max_message_length": 1200})
    session = (await start(client, public_id=assistant["public_id"])).json()
    spanish = {**bearer(session), "Accept-Language": "es"}
    too_long = await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/messages", json={"content": "x" * 1201}, headers=spanish
    )
    assert too_long.status_code == 413
    assert too_long.json()["error"] == {
        "code": "message_too_long",
        "message": "Este mensaje es demasiado largo: como máximo 1.200 caracteres, por favor.",
    }
    german = {**bearer(session), "Accept-Language": "de"}
    blank = await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/messages", json={"content": "   "}, headers=german
    )
    assert blank.json()["error"]["message"] == "schreiben Sie etwas: die Nachricht ist leer"
    ended = await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=spanish)
    assert ended.json()["end_message"] == "Ha terminado esta conversación."
    again = await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/messages", json={"content": "Hola"}, headers=german
    )
    assert again.json()["error"]["code"] == "session_ended"
    assert again.json()["error"]["message"].startswith("Dieses Gespräch ist beendet.")


async def test_owners_read_english_whatever_their_browser_asks(client, alice: Person):
    german = {"Accept-Language": "de"}
    # A German chat page first: its language ends with its request.
    assistant = await alice.new_assistant()
    assert html_lang((await client.get(f"/c/{assistant['public_id']}", params={"lang": "de"})).text)[0] == "de"
    # A sentence guests read in German (an address that names nothing) stays English for owners.
    missing = await alice.request("GET", "/api/v1/assistants/not-an-id", headers=german)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "There is nothing at this address."
    guest = await client.get("/api/v1/chat/nothing-here", headers=german)
    assert guest.status_code == 404 and guest.json()["error"]["message"] == "Unter dieser Adresse gibt es nichts."
    refused = await client.get("/api/v1/assistants", headers=german)
    assert refused.json()["error"]["message"].startswith("This needs a token")
    page = await client.get("/dashboard/sign-in", headers=german)
    assert '<html lang="en">' in page.text


async def test_an_assistants_language_must_be_one_guests_can_be_answered_in(client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    for bad in ("xx", "german", 7, "<b>"):
        refused = await alice.request("PATCH", base, json={"settings": {"language": bad}})
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["message"] == "settings.language: Choose one of de, en, es, fr, or null."
    # Case does not matter; other settings are kept.
    patched = await alice.request("PATCH", base, json={"settings": {"language": "FR"}})
    assert patched.json()["draft"]["settings"]["language"] == "fr"
    assert patched.json()["draft"]["settings"]["max_message_length"] == 4000
    await alice.request("POST", f"{base}/publish")
    found = await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})
    assert found.json()["language"] == "fr"


@pytest.mark.parametrize(
    ("language", "seconds", "sentence"),
    [
        ("en", 1, "Too many requests at once. Please wait a moment and try again. You can try again in 1 second."),
        (
            "de",
            90,
            "Zu viele Anfragen auf einmal. Bitte warten Sie einen Moment und versuchen Sie es erneut. "
            "Sie können es in 90 Sekunden erneut versuchen.",
        ),
        (
            "fr",
            1,
            "Trop de requêtes à la fois. Veuillez patienter un instant et réessayer. "
            "Vous pourrez réessayer dans 1 seconde.",
        ),
        (
            "es",
            600,
            "Demasiadas solicitudes a la vez. Espere un momento y vuelva a intentarlo. "
            "Puede volver a intentarlo dentro de 10 minutos.",
        ),
    ],
)
def test_a_rate_limits_wait_is_worded_and_counted_for_the_language(language: str, seconds: int, sentence: str):
    i18n.use(i18n.LANGUAGES[language])
    try:
        assert RateLimited(seconds).message == sentence
    finally:
        i18n.use(i18n.ENGLISH)


def test_accept_language_picks_the_best_shipped_language():
    best = i18n.from_accept_language
    assert best("de-CH, de;q=0.9, en;q=0.8").code == "de"
    assert best("ja;q=1.0, es;q=0.2, fr;q=0.5").code == "fr"
    assert best("es;q=0, fr;q=0.1").code == "fr"
    assert best("ja, zh") is None and best("*") is None and best(";;;q=x,,") is None
    assert best("en-GB").code == "en"


async def test_the_owner_chooses_the_assistants_language_on_the_behavior_page(web, alice: Person):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    page = await web.get(path)
    assert '<option value="" selected>' not in page.text  # nothing chosen: the browser decides
    assert '<option value="de">Deutsch</option>' in page.text and '<option value="fr">Français</option>' in page.text
    assert (await web.post(path, {**BEHAVIOR, "language": "de"})).status_code == 303
    assert '<option value="de" selected>' in (await web.get(path)).text
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["settings"]["language"] == "de"

    refused = await web.post(path, {**BEHAVIOR, "language": "klingon"})
    assert refused.status_code == 422
    assert field_errors(refused.text) == {"language": "Choose one of the languages in the list."}
    assert 'aria-describedby="language-hint language-error" aria-invalid="true"' in refused.text
    # Back to the browser's choice.
    assert (await web.post(path, {**BEHAVIOR, "language": ""})).status_code == 303
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["settings"]["language"] is None
