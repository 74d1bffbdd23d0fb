"""A client that starts a request and stops sending is closed, not kept open for ever."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

# Connections, not the database: once, on SQLite, on the worker's server with a 1 s request timeout.
pytestmark = pytest.mark.sqlite_only


@contextlib.contextmanager
def timeout_server(shared_server):  # type: ignore[no-untyped-def]
    yield shared_server(PORTICO_REQUEST_TIMEOUT="1").url


async def test_a_body_that_stops_arriving_is_answered_408_and_closed(shared_server):
    with timeout_server(shared_server) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        began = time.monotonic()
        writer.write(
            b"POST /api/v1/chat/lookup HTTP/1.1\r\nHost: portico\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"public_id": "'
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # until the server closes
        took = time.monotonic() - began
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer
    assert took < 5, f"closed after {took:.1f} s with a 1 s timeout"


async def test_headers_that_trickle_in_are_cut_off(shared_server):
    with timeout_server(shared_server) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        began = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: portico\r\n")  # and the rest never comes
        await writer.drain()
        for _ in range(3):
            await asyncio.sleep(0.4)
            if writer.is_closing():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(b"X")  # a byte now and then, as slowloris does
                await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # until the server closes
        took = time.monotonic() - began
        writer.close()
    assert answer == b"", answer[:200]
    assert took < 5, f"closed after {took:.1f} s with a 1 s timeout"


async def test_a_prompt_client_is_not_cut_off(shared_server):
    with timeout_server(shared_server) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(3):
                assert (await http.get("/healthz")).status_code == 200
                await asyncio.sleep(0.7)  # kept alive across more than the timeout in all
