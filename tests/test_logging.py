"""Log records carry no key or token; an unexpected request error is logged once, with its traceback."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import uvicorn

from portico.app import create_app
from portico.config import load_settings
from portico.kit.logs import redact
from tests.conftest import BASE_URL, SECRET
from tests.servers import free_port

LINK_KEY = "ptk_" + "K" * 43
SESSION_TOKEN = "pts_" + "S" * 43
API_TOKEN = "pto_" + "T" * 43
INVITATION = "pti_" + "I" * 43
UPSTREAM_KEY = "sk-proj-Upstream0123456789"
SECRETS = (LINK_KEY, SESSION_TOKEN, API_TOKEN, INVITATION, UPSTREAM_KEY, "opaque-bearer-credential")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key={LINK_KEY}&x=1", "key=ptk_[redacted]&x=1"),
        (f"token {SESSION_TOKEN}.", "token pts_[redacted]."),
        (f"'{API_TOKEN}'", "'pto_[redacted]'"),
        (f"/dashboard/join#i={INVITATION}", "/dashboard/join#i=pti_[redacted]"),
        (f"api_key={UPSTREAM_KEY}", "api_key=sk-[redacted]"),
        ("Authorization: Bearer opaque-bearer-credential", "Authorization: Bearer [redacted]"),
        ("a risk-free task-force of sk-ilful people", "a risk-free task-force of sk-ilful people"),
    ],
)
def test_secrets_in_text_are_redacted_and_ordinary_words_are_not(text, expected):
    assert redact(text) == expected


def boom_app(tmp_path):
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'portico.db'}", data_dir=tmp_path, secret_key=SECRET, base_url=BASE_URL
    )
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError(f"upstream said no to Bearer {SECRETS[-1]} with {' and '.join(SECRETS[:-1])}")

    app.add_api_route("/boom", boom)
    return app


def logged_text(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)


async def test_an_unexpected_error_is_logged_with_its_traceback_and_no_secret(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    app = boom_app(tmp_path)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert not any(secret in response.text for secret in SECRETS)

    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "unexpected error on GET /boom"
    assert "Traceback (most recent call last)" in record.exc_text
    assert "RuntimeError: upstream said no to Bearer [redacted] with ptk_[redacted]" in record.exc_text
    for secret in SECRETS:
        assert secret not in logged_text(caplog)
        assert secret not in caplog.text


async def test_a_real_server_logs_an_unexpected_error_once(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    app = boom_app(tmp_path)
    # log_config=None keeps uvicorn's records flowing to the root logger, where caplog listens.
    server = uvicorn.Server(uvicorn.Config(app, port=free_port(), lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.config.port}") as http:
            response = await http.get("/boom")
        assert response.status_code == 500
    finally:
        server.should_exit = True
        await serving

    with_traceback = [r for r in caplog.records if r.exc_text]
    assert [(r.name, r.getMessage()) for r in with_traceback] == [("portico", "unexpected error on GET /boom")]
    for secret in SECRETS:
        assert secret not in caplog.text


def test_records_of_any_portico_logger_are_redacted(tmp_path, caplog):
    boom_app(tmp_path)  # start-up installs the filter
    try:
        raise ValueError(f"could not reach the model with {UPSTREAM_KEY}")
    except ValueError:
        logging.getLogger("portico.chores").exception("chore %s failed for %s", "rollup", LINK_KEY)
    logging.getLogger("portico").warning(ValueError(f"not even as the message itself: {SESSION_TOKEN}"))
    chore, warning = caplog.records
    assert chore.getMessage() == "chore rollup failed for ptk_[redacted]"
    assert "ValueError: could not reach the model with sk-[redacted]" in chore.exc_text
    assert warning.getMessage() == "not even as the message itself: pts_[redacted]"
