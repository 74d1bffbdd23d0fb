"""A local stand-in for an OpenAI-compatible model server, for bench/chat.py.

`POST .../chat/completions` (any path prefix, so several `base_url`s can point at one process)
answers with `stream: true` the way OpenAI does: `data: {chunk}` lines, one chunk per token,
a final chunk with `finish_reason`, a usage chunk (as `stream_options.include_usage` asks),
then `data: [DONE]`. Without `stream: true` it answers one JSON completion.

How it streams is read from the request's model name, so each assistant (or the bare proxy)
chooses its own upstream behaviour without restarting anything:

    fake:chunks=20,delay_ms=5,first_ms=0

  chunks    tokens to send (default 20); 0 = keep sending until the client goes away
            (bounded by max_s)
  delay_ms  pause between two tokens (default 5)
  first_ms  pause before the first token (default 0)
  max_s     hard limit on one stream's length in seconds (default 900)

It is a plain ASGI callable (no framework) so that the upstream costs as little CPU as possible
on a small machine; it is the same upstream for Portico and for the bare proxy.

    python bench/fake_model.py --port 8101
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
]


def parse_model(name: str) -> dict[str, float]:
    params = {"chunks": 20.0, "delay_ms": 5.0, "first_ms": 0.0, "max_s": 900.0}
    _, _, spec = name.partition(":")
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() in params:
            try:
                params[key.strip()] = float(value)
            except ValueError:
                pass
    return params


def chunk(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def usage_chunk(model: str, prompt: int, completion: int) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


async def read_body(receive) -> bytes:  # type: ignore[no-untyped-def]
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    try:
        request = json.loads(await read_body(receive))
    except ConnectionError:
        return
    model = str(request.get("model", ""))
    params = parse_model(model)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    chunks = int(params["chunks"])

    if not request.get("stream"):
        text = "tok " * (chunks or 1)
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": chunks,
                "total_tokens": prompt_tokens + chunks,
            },
        }
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
        return

    gone = asyncio.Event()

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    watcher = asyncio.create_task(watch_disconnect())

    async def pause(ms: float) -> None:
        if ms > 0:
            try:
                await asyncio.wait_for(gone.wait(), ms / 1000)
            except TimeoutError:
                pass

    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        deadline = time.monotonic() + params["max_s"]
        await pause(params["first_ms"])
        sent = 0
        token = chunk(model, {"role": "assistant", "content": "tok "})
        while not gone.is_set() and (chunks == 0 or sent < chunks) and time.monotonic() < deadline:
            if sent:
                await pause(params["delay_ms"])
                if gone.is_set():
                    break
            await send({"type": "http.response.body", "body": token, "more_body": True})
            sent += 1
        if not gone.is_set():
            tail = chunk(model, {}, "stop") + usage_chunk(model, prompt_tokens, sent) + b"data: [DONE]\n\n"
            await send({"type": "http.response.body", "body": tail, "more_body": False})
    finally:
        watcher.cancel()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", backlog=args.backlog, lifespan="on")


if __name__ == "__main__":
    main()
