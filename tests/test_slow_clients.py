"""A client that starts a request and stops sending is closed, not kept open for ever."""

from __future__ import annotations

import asyncio
import time

from tests.servers import portico_server


async def test_a_body_that_stops_arriving_is_answered_408_and_closed(settings, tmp_path):
    with portico_server(settings, tmp_path / "server.log", PORTICO_BODY_TIMEOUT="1") as url:
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
    assert b"body_timeout" in answer
    assert took < 5, f"closed after {took:.1f} s with a 1 s timeout"
