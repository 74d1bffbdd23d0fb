"""Where an owner's `openai` engine may connect: never to link-local or cloud-metadata addresses
(where the stored API key and the conversation would be sent to the machine's own secrets), only to
the operator's list when there is one; a model on localhost or the office network works as before.
And an upstream that answers 200 with something that is not a chat completion is an engine error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from portico.config import get_settings
from portico.engines import EngineError, EngineRequest
from portico.engines.builtin import BuiltinEngine
from portico.engines.openai.engine import OpenAIEngine
from tests.chat_helpers import parse_events, say
from tests.conftest import Person, start
from tests.test_dashboard_pages import BEHAVIOR, field_errors, new_assistant, web  # noqa: F401 (fixture)
from tests.upstream import upstream_server

METADATA = [
    "http://169.254.169.254/latest",
    "http://169.254.170.2/v1",
    "http://[fe80::1]:8080/v1",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://2852039166/",  # 169.254.169.254 written as one number
    "http://0xa9.0xfe.0xa9.0xfe/",
]
SELF_HOSTED = ["http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://10.1.2.3/v1", "http://[::1]:8080/v1"]


@pytest.fixture
def allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Sets PORTICO_ENGINE_ALLOWED_HOSTS for the rest of the test, as an operator would."""

    def allow(hosts: str) -> None:
        monkeypatch.setenv("PORTICO_ENGINE_ALLOWED_HOSTS", hosts)
        get_settings.cache_clear()

    yield allow
    monkeypatch.delenv("PORTICO_ENGINE_ALLOWED_HOSTS", raising=False)
    get_settings.cache_clear()


def openai_engine(base_url: str, model: str = "quick", **fields: object) -> dict:
    return {"type": "openai", "base_url": base_url, "model": model, "api_key": "sk-secret", **fields}


async def test_an_engine_at_a_metadata_or_link_local_address_is_refused_when_saved(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    for url in METADATA:
        created = await alice.request("POST", "/api/v1/assistants", json={"name": "A", "engine": openai_engine(url)})
        changed = await alice.request(
            "PATCH", f"/api/v1/assistants/{assistant['id']}", json={"engine": openai_engine(url)}
        )
        for response in (created, changed):
            assert response.status_code == 422, url
            error = response.json()["error"]
            assert error["code"] == "invalid_request"
            assert "engine" in error["message"] and "base_url" in error["message"], error
            assert "link-local or cloud-metadata address" in error["message"]
    listed = (await alice.request("GET", "/api/v1/assistants")).json()["items"]
    assert [a["draft"]["engine"]["type"] for a in listed] == ["builtin"]


async def test_a_model_on_localhost_or_a_private_network_can_be_saved(client, alice: Person):
    for url in SELF_HOSTED:
        response = await alice.request("POST", "/api/v1/assistants", json={"name": "A", "engine": openai_engine(url)})
        assert response.status_code == 201, (url, response.text)


async def test_the_dashboard_says_why_beside_the_base_url(web, alice: Person):  # noqa: F811
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    typed = {**BEHAVIOR, "engine_type": "openai", "base_url": "http://169.254.169.254/", "model": "m"}
    response = await web.post(path, typed)
    assert response.status_code == 422
    assert field_errors(response.text) == {
        "base_url": "169.254.169.254 is a link-local or cloud-metadata address, which engines may not use."
    }


async def test_with_a_list_of_allowed_hosts_only_those_can_be_saved(client, alice: Person, allowed_hosts):
    allowed_hosts("models.example.org, 127.0.0.1")
    off_list = await alice.request(
        "POST", "/api/v1/assistants", json={"name": "A", "engine": openai_engine("https://api.example.com/v1")}
    )
    assert off_list.status_code == 422
    assert "api.example.com is not one of the engine hosts this Portico allows" in off_list.json()["error"]["message"]
    for url in ("https://models.example.org/v1", "https://MODELS.example.org./v1", "http://127.0.0.1:9/v1"):
        response = await alice.request("POST", "/api/v1/assistants", json={"name": "A", "engine": openai_engine(url)})
        assert response.status_code == 201, url


async def test_an_engine_saved_before_the_list_cannot_reach_a_host_off_it(client, alice: Person, allowed_hosts):
    with upstream_server() as (base_url, seen):
        assistant = await alice.new_assistant(engine=openai_engine(base_url))
        allowed_hosts("models.example.org")
        session = (await start(client, public_id=assistant["public_id"])).json()
        response = await say(client, session, "Hello?")
    assert (response.status_code, response.json()["error"]["code"]) == (502, "engine_error")
    assert seen == [], "the key was sent to a host off the list"


async def test_a_model_on_localhost_by_name_still_answers(client, alice: Person):
    with upstream_server() as (base_url, seen):
        by_name = base_url.replace("127.0.0.1", "localhost")
        assistant = await alice.new_assistant(engine=openai_engine(by_name))
        session = (await start(client, public_id=assistant["public_id"])).json()
        reply = await say(client, session, "Hello?")
    assert reply.status_code == 200 and reply.json()["content"].split() == ["word0", "word1", "word2"]
    assert len(seen) == 1


def engine_request(base_url: str, model: str = "quick") -> EngineRequest:
    return EngineRequest(
        version_key="v1",
        instructions="",
        knowledge="",
        engine={"type": "openai", "base_url": base_url, "model": model, "timeout": 5},
        prompt="Hello?",
        secrets={"api_key": "sk-secret"},
    )


async def reply_of(request: EngineRequest) -> list[object]:
    engine = OpenAIEngine(retriever=BuiltinEngine())
    try:
        return [item async for item in engine.stream(request)]
    finally:
        await engine.aclose()


async def test_a_name_that_resolves_to_the_metadata_address_is_refused_when_connecting():
    # The resolver, not Python, reads "2852039166" as 169.254.169.254: a name to every check that
    # does not resolve it, as one an attacker's DNS could answer with when the engine connects.
    began = time.monotonic()
    with pytest.raises(EngineError) as refused:
        await reply_of(engine_request("http://2852039166/v1"))
    assert refused.value.code == "engine_error" and not refused.value.retryable
    assert "resolves to a link-local or cloud-metadata address" in refused.value.detail
    assert time.monotonic() - began < 2, "it tried to connect"


async def test_a_redirect_to_the_metadata_address_is_not_followed():
    with upstream_server() as (base_url, seen):
        began = time.monotonic()
        with pytest.raises(EngineError) as refused:
            await reply_of(engine_request(base_url, model="metadata"))
    assert refused.value.code == "engine_error"
    assert "169.254.169.254 is a link-local or cloud-metadata address" in refused.value.detail
    assert len(seen) == 1 and time.monotonic() - began < 2


async def test_an_upstream_that_answers_a_web_page_is_an_engine_error_not_an_empty_reply(client, alice: Person):
    with upstream_server() as (base_url, _seen):
        assistant = await alice.new_assistant(engine=openai_engine(base_url, model="html"))
        session = (await start(client, public_id=assistant["public_id"])).json()
        as_json = await say(client, session, "Hello?")
        streamed = parse_events((await say(client, session, "Hello?", stream=True)).text)
    assert (as_json.status_code, as_json.json()["error"]["code"]) == (502, "engine_error")
    assert streamed[-1][0] == "error" and streamed[-1][1]["code"] == "engine_error"
    assert [name for name, _ in streamed].count("token") == 0


async def test_an_upstream_that_sends_the_whole_completion_at_once_is_still_answered():
    with upstream_server() as (base_url, _seen):
        reply = await reply_of(engine_request(base_url, model="whole"))
    assert reply[0] == "All at once." and (reply[-1].tokens_in, reply[-1].tokens_out) == (7, 3)  # type: ignore[union-attr]
