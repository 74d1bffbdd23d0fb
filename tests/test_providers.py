"""A provider is one folder that declares itself: a fake reply engine registered here, at test time,
is found in the API's schema, on the Behavior form, in the secret handling and in a guest's reply,
with no other code knowing its name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import Field

from portico.app import create_app
from portico.engines import PROVIDERS, EngineRequest, Kind, Provider, ProviderConfig, Providers, Sources, Usage
from tests.chat_helpers import say
from tests.conftest import BASE_URL, Person, make_person, start
from tests.dashboard_helpers import Dashboard, dashboard_client


class EchoConfig(ProviderConfig):
    type: Literal["echo"]
    prefix: str = Field(default="echo: ", max_length=20)
    token: str | None = Field(default=None, max_length=100, repr=False)


class EchoEngine:
    name = "echo"
    reads_history = False

    def __init__(self) -> None:
        self.secrets_seen: list[dict[str, str]] = []

    async def stream(self, request: EngineRequest) -> AsyncIterator[str | Sources | Usage]:
        self.secrets_seen.append(dict(request.secrets))
        yield request.engine["prefix"] + request.prompt
        yield Usage(tokens_in=1, tokens_out=1)

    async def aclose(self) -> None:
        return None


def echo_checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    return [] if config.get("prefix") else ["engine.prefix: say what the echo starts with."]


ECHO = Provider(
    kind=Kind.REPLY,
    name="echo",
    config=EchoConfig,
    make=lambda providers: EchoEngine(),
    label="Echo",
    summary="says the question back.",
    secrets=("token",),
    checks=echo_checks,
)


@pytest.fixture
def echo() -> Iterator[Provider]:
    with PROVIDERS.registered(ECHO) as provider:
        yield provider


@pytest.fixture
async def own_app(settings, echo) -> AsyncIterator[object]:
    """An app of its own, made after the fake was registered: the tests' shared apps keep the
    OpenAPI schema they made first."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def owner(own_app) -> AsyncIterator[Person]:
    transport = httpx.ASGITransport(app=own_app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield await make_person(own_app, http, "alice@example.com")


async def test_a_registered_provider_is_in_the_api_schema(owner: Person):
    schema = (await owner.http.get("/openapi.json")).json()
    union = schema["components"]["schemas"]["AssistantUpdate"]["properties"]["engine"]["anyOf"][0]
    assert union["discriminator"]["mapping"]["echo"] == "#/components/schemas/EchoConfig"
    assert set(schema["components"]["schemas"]["EchoConfig"]["properties"]) == {"type", "prefix", "token"}
    # Its public view: the prefix, and whether a token is stored, never the token.
    view = schema["components"]["schemas"]["EngineOut"]["properties"]
    assert "prefix" in view and "has_token" in view and "token" not in view


async def test_a_guest_is_answered_by_a_registered_provider_with_its_secret_given(owner: Person, echo: Provider):
    engine = {"type": "echo", "prefix": "you said: ", "token": "tok-123"}
    assistant = await owner.new_assistant(engine=engine)
    shown = assistant["draft"]["engine"]
    assert shown["type"] == "echo" and shown["prefix"] == "you said: " and shown["has_token"] is True
    assert "tok-123" not in str(assistant)
    session = (await start(owner.http, public_id=assistant["public_id"])).json()
    reply = await say(owner.http, session, "hello")
    assert reply.status_code == 200, reply.text
    assert reply.json()["content"] == "you said: hello"
    assert PROVIDERS.made(Kind.REPLY, "echo").secrets_seen == [{"token": "tok-123"}]


async def test_a_registered_provider_checks_its_drafts(owner: Person):
    assistant = await owner.new_assistant(engine={"type": "echo", "prefix": ""}, publish=False, live=False)
    published = await owner.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    assert published.status_code == 422
    assert "engine.prefix" in published.text


async def test_a_registered_provider_is_a_choice_on_the_behavior_form(own_app, owner: Person):
    assistant = await owner.new_assistant(publish=False, live=False)
    async with dashboard_client(own_app) as http:
        web = Dashboard(http)
        await web.sign_in(owner.email, "correct horse battery")
        page = await web.get(f"/dashboard/assistants/{assistant['id']}/behavior")
        assert 'id="engine-echo" name="engine_type" type="radio" value="echo"' in page.text
        assert "<strong>Echo</strong>: says the question back." in page.text
        form = {
            "name": "Helper",
            "knowledge": "x",
            "inactivity_timeout": "600",
            "max_duration": "3600",
            "max_message_length": "4000",
            "engine_type": "echo",
            "prefix": "form:",
            "token": "tok-form",
        }
        saved = await web.post(f"/dashboard/assistants/{assistant['id']}/behavior", form)
        assert saved.status_code == 303, saved.text
    engine = (await owner.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]["engine"]
    assert engine["type"] == "echo" and engine["prefix"] == "form:" and engine["has_token"] is True


async def test_an_unregistered_provider_is_refused(client, alice: Person):
    # The tests' shared app, without the fake: its name is no engine.
    response = await alice.request("POST", "/api/v1/assistants", json={"name": "Helper", "engine": {"type": "echo"}})
    assert response.status_code == 422


def test_a_provider_is_registered_once():
    providers = Providers([ECHO])
    with pytest.raises(ValueError, match="already registered"):
        providers.add(ECHO)
