"""The bare streaming endpoints that bench/chat.py measures beside Portico's chat replies.

Two routes that answer like `POST /api/v1/chat/sessions/{id}/messages` with
`Accept: text/event-stream` (sse-starlette's EventSourceResponse, `event: token` frames with
`{"text": ...}`, then `event: done`), with nothing else: no database, no session, no retrieval.

  POST /builtin  streams a fixed reply (--reply-file; the text Portico's builtin engine gave
                 for the same question), split into the same pieces the builtin engine yields
  POST /proxy    calls the upstream model server (--upstream, OpenAI-compatible,
                 `POST {upstream}/chat/completions` with `stream: true`) with one shared
                 httpx.AsyncClient and re-emits each chunk's delta as a token event: the least
                 a streaming proxy in front of a model can do

Both parse the same JSON body (`{"content": "..."}`, strict) and require a bearer token header,
like Portico's route. It imports nothing from Portico.

    python bench/bare_stream.py --port 8102 --upstream http://127.0.0.1:8101/v1 --model fake:chunks=20

runs with the uvicorn settings `portico serve` passes (1 worker, log level info, no access log,
proxy headers).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    content: str = Field(min_length=1, max_length=100_000)


class Config:
    reply = "Hello from the bare endpoint."
    upstream = "http://127.0.0.1:8101/v1"
    model = "fake:chunks=20,delay_ms=5"
    client: httpx.AsyncClient | None = None


# FastAPI settings as in portico.app (no per-request telemetry lookup).
app = FastAPI(title="bare stream", telemetry={"tracing": False, "metrics": False, "logs": False})
_ids = itertools.count(1)
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "bearer token required")
    return authorization[7:]


@app.post("/builtin")
async def builtin(body: MessageIn, authorization: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    _bearer(authorization)
    pieces = re.findall(r"\S+\s*|\s+", Config.reply)

    async def events():  # type: ignore[no-untyped-def]
        for piece in pieces:
            yield {"event": "token", "data": json.dumps({"text": piece})}
        done = {"message_id": next(_ids), "tokens_in": len(body.content.split()), "tokens_out": len(pieces)}
        yield {"event": "done", "data": json.dumps(done)}

    return EventSourceResponse(events(), ping=15, headers=SSE_HEADERS)


@app.post("/proxy")
async def proxy(body: MessageIn, authorization: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    _bearer(authorization)
    assert Config.client is not None
    request = {
        "model": Config.model,
        "messages": [{"role": "user", "content": body.content}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def events():  # type: ignore[no-untyped-def]
        written = 0
        async with Config.client.stream("POST", Config.upstream + "/chat/completions", json=request) as answer:
            if answer.status_code != 200:
                yield {
                    "event": "error",
                    "data": json.dumps({"code": "engine_error", "message": str(answer.status_code)}),
                }
                return
            async for line in answer.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                choices = chunk.get("choices") or []
                text = choices[0].get("delta", {}).get("content") if choices else None
                if text:
                    written += 1
                    yield {"event": "token", "data": json.dumps({"text": text})}
        yield {"event": "done", "data": json.dumps({"message_id": next(_ids), "tokens_in": 0, "tokens_out": written})}

    return EventSourceResponse(events(), ping=15, headers=SSE_HEADERS)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--upstream", default=Config.upstream, help="the model server's base URL (ends in /v1)")
    parser.add_argument("--model", default=Config.model)
    parser.add_argument("--reply-file", type=Path, help="the text /builtin streams")
    args = parser.parse_args()
    if args.reply_file:
        Config.reply = args.reply_file.read_text(encoding="utf-8")
    Config.upstream = args.upstream.rstrip("/")
    Config.model = args.model
    limits = httpx.Limits(max_connections=10_000, max_keepalive_connections=1_000)
    Config.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0))
    # The same settings as `portico serve` (src/portico/cli.py), so that only the app differs.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="info", access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
