"""Dashboard forms are checked by the API's own models: a bad field gets a sentence beside it, what
was typed stays in the form, and nothing is saved."""

from __future__ import annotations

import html
import re

from tests.conftest import Person
from tests.test_dashboard_pages import BEHAVIOR, field_errors, new_assistant, web  # noqa: F401 (fixture)


def typed_value(html: str, field: str) -> str:
    found = re.search(rf'<input id="{field}" name="{field}"[^>]* value="([^"]*)"', html)
    assert found, f"no input {field}"
    return found.group(1)


async def test_a_bad_field_in_behavior_shows_its_sentence_beside_it_and_keeps_what_was_typed(web, alice: Person):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    typed = {**BEHAVIOR, "greeting": "Welcome, new class!", "instructions": "Answer in French.", "max_duration": "10"}
    response = await web.post(path, typed)

    assert response.status_code == 422
    assert field_errors(response.text) == {"max_duration": "The maximum duration must be at least 60 seconds."}
    assert 'aria-describedby="max_duration-error" aria-invalid="true"' in response.text
    assert typed_value(response.text, "max_duration") == "10"
    assert "Welcome, new class!</textarea>" in response.text and "Answer in French.</textarea>" in response.text
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["greeting"] == "" and stored["draft"]["settings"]["max_duration"] == 3600


async def test_behavior_problems_are_said_in_sentences_not_in_the_library_s_words(web):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    bad = {
        **BEHAVIOR,
        "name": "   ",
        "description": "d" * 2_001,
        "engine_type": "openai",
        "base_url": "ftp//nowhere",
        "model": "m" * 201,
        "temperature": "warm",
        "timeout": "0",
        "max_tokens": "2.5",
        "max_message_length": "100001",
    }
    response = await web.post(path, bad)

    assert response.status_code == 422
    assert field_errors(response.text) == {
        "name": "Give the assistant a name of 1 to 200 characters.",
        "description": "The description can be at most 2,000 characters.",
        "base_url": "The server URL must be a full address starting with http:// or https://.",
        "model": "The model can be at most 200 characters.",
        "temperature": "The creativity must be a number.",
        "timeout": "The timeout must be more than 0 seconds.",
        "max_tokens": "The response length must be a whole number.",
        "max_message_length": "The maximum message length can be at most 100,000 characters.",
    }
    assert typed_value(response.text, "temperature") == "warm"


async def test_an_engine_the_form_does_not_offer_is_refused_beside_the_engine_choice(web):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    response = await web.post(path, {**BEHAVIOR, "engine_type": "wizard"})
    assert response.status_code == 422
    assert field_errors(response.text) == {"engine_type": "Choose the built-in engine or an OpenAI-compatible one."}


async def test_the_engine_s_hidden_fields_are_ignored_while_the_builtin_engine_is_chosen(web, alice: Person):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    saved = await web.post(path, {**BEHAVIOR, "engine_type": "builtin", "temperature": "", "base_url": "nonsense"})
    assert saved.status_code == 303
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["engine"]["type"] == "builtin"


async def test_a_new_assistant_without_a_name_is_explained_on_the_list(web):
    await web.get("/dashboard")
    response = await web.post("/dashboard/assistants", {"name": " "})
    assert response.status_code == 422
    assert field_errors(response.text) == {"name": "Give the assistant a name of 1 to 200 characters."}


async def test_share_forms_refuse_what_the_api_refuses(web, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")

    status = await web.post(f"{base}/status", {"status": "paused"})
    assert status.status_code == 422 and "Choose Live or Offline." in status.text
    mode = await web.post(f"{base}/share-mode", {"mode": "secret"})
    assert mode.status_code == 422 and "Choose Anyone with the link or Private." in mode.text

    user = await web.post(f"{base}/users", {"name": "", "max_sessions": "1000001"})
    assert user.status_code == 422
    assert field_errors(user.text) == {
        "name": "Give the user or group a name of 1 to 200 characters.",
        "max_sessions": "Enter a whole number from 0 (unlimited) to 1,000,000.",
    }

    domains = await web.post(f"{base}/domains", {"allowed_domains": "school.example\nftp://files.example"})
    assert domains.status_code == 422
    assert html.unescape(field_errors(domains.text)["allowed_domains"]) == (
        "'ftp://files.example' is not a domain or an origin like https://example.com."
    )
    assert "school.example\nftp://files.example</textarea>" in domains.text
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    unchanged = ("status", "share_mode", "allowed_domains")
    assert [stored[k] for k in unchanged] == [assistant[k] for k in unchanged]


async def test_logs_settings_refuse_a_retention_the_api_refuses(web, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/logs")
    for days, said in [
        ("lots", "The number of days to keep sessions must be a whole number."),
        ("3651", "The number of days to keep sessions can be at most 3,650 days."),
        ("-1", "The number of days to keep sessions must be at least 0 days."),
    ]:
        refused = await web.post(f"{base}/logs/settings", {"retention_days": days})
        assert refused.status_code == 422
        assert field_errors(refused.text) == {"retention_days": said}
        assert typed_value(refused.text, "retention_days") == days
    saved = await web.post(f"{base}/logs/settings", {"retention_days": " 30 ", "store_transcripts": "1"})
    assert saved.status_code == 303
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    assert (stored["retention_days"], stored["store_transcripts"]) == (30, True)
