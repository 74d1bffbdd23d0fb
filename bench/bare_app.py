"""The bare endpoint that bench/session_start.py measures beside Portico.

One `POST /start` that parses the same JSON body as `POST /api/v1/chat/sessions` (same
strict pydantic model) and answers 201 with a response of the same shape, without any
database work. It is what FastAPI + uvicorn cost on this machine with nothing else.

    python bench/bare_app.py --port 8001

runs it with the settings `portico serve` passes to uvicorn (1 worker, log level info, no access
log, proxy headers, uvloop and httptools when installed). It imports nothing from Portico.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, model_validator


class SessionStart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    public_id: str | None = Field(default=None, max_length=200)
    key: str | None = Field(default=None, max_length=1_000)
    channel: Literal["link", "widget", "api"] = "link"

    @model_validator(mode="after")
    def _public_id_or_key(self) -> SessionStart:
        if self.public_id is None and self.key is None:
            raise ValueError("give public_id, key, or both")
        return self


class AssistantBrief(BaseModel):
    public_id: str
    name: str
    description: str


class LinkBrief(BaseModel):
    name: str
    sessions_left: int | None


class SessionStarted(BaseModel):
    session_id: int
    token: str
    greeting: str
    assistant: AssistantBrief
    link: LinkBrief | None


# FastAPI settings as in portico.app (no per-request telemetry lookup).
app = FastAPI(title="bare", telemetry={"tracing": False, "metrics": False, "logs": False})
_ids = itertools.count(1)
_ASSISTANT = AssistantBrief(
    public_id="bare0000bare0000",
    name="Portico Guide",
    description="Ask me anything about Portico: sharing, links, sessions, Logs.",
)
_GREETING = "Hello! I answer questions about Portico. What would you like to know?"


@app.post("/start", status_code=201)
async def start(body: SessionStart) -> SessionStarted:
    return SessionStarted(
        session_id=next(_ids),
        token="pts_" + secrets.token_urlsafe(32),
        greeting=_GREETING,
        assistant=_ASSISTANT,
        link=LinkBrief(name="bench", sessions_left=None) if body.key else None,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same settings as `portico serve` (src/portico/cli.py), so that only the app differs.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="info", access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
