"""A small OpenAI-compatible model server on loopback, for what a second Portico cannot do on
demand: stream slowly, fail, hang, or answer something else. The model name picks the behaviour:
`slow` (100 words, 50 ms apart), `quick` (3 words at once), `fail` (500), `hang` (never answers),
`html` (200, a web page, as a captive portal or a misconfigured proxy answers), `whole` (200, one
JSON chat completion, as a server that ignores "stream" answers) and `metadata` (307 to the cloud
metadata address)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

from tests.servers import free_port

SLOW_CHUNKS = 100
SLOW_DELAY = 0.05


async def completions(request: Request):  # type: ignore[no-untyped-def]
    body = await request.json()
    request.app.state.seen.append({"body": body, "authorization": request.headers.get("authorization")})
    model = body["model"]
    if model == "fail":
        return JSONResponse({"error": {"message": "model crashed", "type": "server_error"}}, status_code=500)
    if model == "hang":
        await asyncio.sleep(3600)
    if model == "html":
        return HTMLResponse("<!doctype html><title>Sign in to the Wi-Fi</title><p>Welcome!</p>")
    if model == "whole":
        message = {"role": "assistant", "content": "All at once."}
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        return JSONResponse(
            {"object": "chat.completion", "choices": [{"index": 0, "message": message}], "usage": usage}
        )
    if model == "metadata":
        return RedirectResponse("http://169.254.169.254/v1/chat/completions", status_code=307)

    count, delay = (3, 0.0) if model == "quick" else (SLOW_CHUNKS, SLOW_DELAY)

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(count):
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
            await asyncio.sleep(delay)
        yield "data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


@contextmanager
def upstream_server() -> Iterator[tuple[str, list[dict]]]:
    """Yields (base URL ending in /v1, the list of requests it received)."""
    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    app.state.seen = []
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("upstream test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", app.state.seen
    finally:
        server.should_exit = True
        thread.join(timeout=10)
