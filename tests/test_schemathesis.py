"""Schemathesis against a real `portico serve`, on SQLite and on PostgreSQL: every operation of the
OpenAPI schema, with an owner's token, answers without a server error and as the schema says."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi import checks

from portico.app import create_app
from portico.config import load_settings
from tests.conftest import BASE_URL, GENEROUS_LIMITS, SECRET, _truncate_postgres, make_person
from tests.servers import portico_server


@dataclass
class Served:
    url: str
    auth: dict[str, str]
    # Carol's token, for the one operation that ends its own team (DELETE /api/v1/team).
    disposable: dict[str, str]


async def _seed(app_settings) -> tuple[str, str]:
    """An owner with a token, and one published, live assistant with a private link, so that
    generated ids and public ids sometimes name something; and carol, whose team may be deleted."""
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            alice = await make_person(app, http, "alice@example.com")
            assistant = await alice.new_assistant()
            await alice.new_links(assistant["id"], 3)
            carol = await make_person(app, http, "carol@example.com")
            await carol.new_assistant()
    return alice.token, carol.token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "portico.db")
        url = f"sqlite:///{folder / 'portico.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_postgres(url)
    # Rate limits are not its subject: schemathesis sends thousands of wrong tokens from one address.
    app_settings = load_settings(
        database_url=url, data_dir=folder, secret_key=SECRET, base_url=BASE_URL, **GENEROUS_LIMITS
    )
    token, disposable = asyncio.run(_seed(app_settings))
    with portico_server(app_settings, Path(folder) / "server.log") as base_url:
        yield Served(
            url=base_url,
            auth={"Authorization": f"Bearer {token}"},
            disposable={"Authorization": f"Bearer {disposable}"},
        )


# A guest's recording is the raw body, as for any binary upload (POST .../utterances).
schemathesis.serializer.alias(["audio/webm", "audio/ogg", "audio/mp4", "audio/wav"], "application/octet-stream")

# The schema is the app's own, built without a database; the requests go to the served instance.
_app = create_app(load_settings(database_url="sqlite:///unused.db", secret_key=SECRET, base_url=BASE_URL))
# Invalid data is refused with the usual statuses, and with 413 when schemathesis makes a body over
# the 1 MiB every request may have (the refusal is documented: `body_too_large`).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
schema = schemathesis.openapi.from_dict(
    _app.openapi(),
    config=SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}),
)


# The OpenAI-compatible routes take a key when there is one: no key is a public assistant, not a
# missing credential, though the schema can only say "bearer".
OPTIONAL_AUTH = [checks.ignored_auth, checks.missing_required_header, checks.negative_data_rejection]
# Some rules span fields or formats a JSON schema cannot state (a public id or a key; a date or a
# date-time; a domain): schema-valid data they refuse gets a documented 422 with a sentence.
ALWAYS_EXCLUDED = [checks.positive_data_acceptance]


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_without_a_server_error_and_as_documented(case, served: Served) -> None:
    excluded = ALWAYS_EXCLUDED + (OPTIONAL_AUTH if case.operation.path.startswith("/v1/") else [])
    # Deleting a team ends its tokens: alice's team stays for every other operation.
    deletes_the_team = (case.operation.method.upper(), case.operation.path) == ("DELETE", "/api/v1/team")
    headers = served.disposable if deletes_the_team else served.auth
    # A negative case that leaves the Authorization header out is sent without one: adding the
    # owner's token would make it a valid request, which the server rightly accepts.
    left_out = "authorization" not in {name.lower() for name in case.headers or {}}
    if left_out and any(name.lower() == "authorization" for name, _ in negated_parameters(case._meta)):
        headers = {}
    case.call_and_validate(base_url=served.url, headers=headers, excluded_checks=excluded)
