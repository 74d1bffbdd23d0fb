"""Portico's own published assistants, served OpenAI-style: `GET /v1/models`, `POST /v1/chat/completions`.

The model is the assistant's public id; the API key is a private link's key, or anything else
(or nothing) for a public assistant. Every completion request is one session of channel `api`,
admitted by the same gate and saved like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ConfigDict, Field

from portico.access.gate import KEY_PREFIX
from portico.access.ratelimit import GuardLookups, GuardStarts
from portico.chat import messages as messages_service
from portico.chat import sessions
from portico.chat.http import CutoffsDep, StoreDep, event_stream, reply_error_status, until_disconnected
from portico.chat.messages import ReplyEvent, check_length
from portico.deps import SettingsDep, VaultDep
from portico.engines import Turn
from portico.errors import InvalidRequest, PorticoError
from portico.handlers import error_response
from portico.schemas import Storable
from portico.vocabulary import Channel, EndReason

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_bearer = HTTPBearer(
    auto_error=False, description="A private link's key (ptk_...), or anything for a public assistant."
)


def link_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    value = credentials.credentials.strip() if credentials else ""
    return value if value.startswith(KEY_PREFIX) else None


LinkKey = Annotated[str | None, Depends(link_key)]


class TextPart(Storable):
    """A content part. Assistants answer text: an image or audio part is refused, not dropped."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(Storable):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


MAX_TURNS = 100
# The whole conversation a client sends may be this many times the assistant's maximum message length.
HISTORY_FACTOR = 10


class HistoryTooLong(PorticoError):
    status = 413
    code = "history_too_long"


def whole_request_check(turns: list[ChatMessage]) -> Callable[[dict[str, Any]], None]:
    """The request's size against the assistant's settings, before a session or a use is taken."""

    def check(settings: dict[str, Any]) -> None:
        limit = settings["max_message_length"]
        if len(turns) > MAX_TURNS:
            raise HistoryTooLong(f"A conversation may have at most {MAX_TURNS} turns; this one has {len(turns)}.")
        total = sum(len(turn.text()) for turn in turns)
        if total > HISTORY_FACTOR * limit:
            raise HistoryTooLong(
                f"The conversation is too long: at most {HISTORY_FACTOR * limit:,} characters in all, please."
            )
        check_length(turns[-1].text(), settings)

    return check


class StreamOptions(Storable):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class CompletionRequest(Storable):
    # OpenAI clients send many optional fields; the assistant's own settings decide the reply.
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200)
    # Bounded by the body's size (1 MiB); the turns are counted against the assistant's settings.
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


@router.get("/models")
async def list_models(store: StoreDep, key: LinkKey, _limits: GuardLookups) -> dict[str, Any]:
    """The assistant a private key opens. Public assistants are not listed: their ids are unguessable."""
    if key is None:
        return {"object": "list", "data": []}
    admission = await sessions.ask_gate(store, public_id=None, key=key)
    model = {"id": admission.assistant.public_id, "object": "model", "created": 0, "owned_by": "portico"}
    return {"object": "list", "data": [model]}


@router.post("/chat/completions")
async def chat_completions(
    body: CompletionRequest,
    key: LinkKey,
    request: Request,
    store: StoreDep,
    cutoffs: CutoffsDep,
    vault: VaultDep,
    settings: SettingsDep,
    limits: GuardStarts,
) -> Response:
    await limits.assistant_start(public_id=body.model, key=key)
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise InvalidRequest("messages: the last message must be a non-empty user message.")
    opened, _token = await sessions.start_session(
        store, public_id=body.model, key=key, channel=Channel.API, check=whole_request_check(turns)
    )
    # The conversation so far arrives with each request; keep it in the session's transcript.
    earlier = [Turn("user" if t.role == "user" else "assistant", t.text()) for t in turns[:-1]]
    pending = await messages_service.accept_conversation(
        store, opened=opened, earlier=earlier, content=turns[-1].text(), vault=vault
    )
    events = messages_service.stream_reply(pending, store=store, cutoffs=cutoffs)
    completion_id = f"chatcmpl-{pending.session_id}"
    created = int(time.time())

    async def finish() -> None:
        await sessions.end_session(store, opened=opened, reason=EndReason.COMPLETED)

    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return event_stream(_chunks(events, finish, completion_id, created, body.model, include_usage), settings)

    parts: list[str] = []
    try:
        async for event in until_disconnected(request, events):
            if event.kind == "token":
                parts.append(event.data["text"])
            elif event.kind == "error":
                return error_response(reply_error_status(event.data), event.data["code"], event.data["message"])
            else:
                return _completion(completion_id, created, body.model, "".join(parts), event.data)
    finally:
        await finish()
    raise AssertionError("a reply always ends with done or error")


def _completion(completion_id: str, created: int, model: str, content: str, done: dict[str, Any]) -> JSONResponse:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": _usage(done),
        }
    )


def _usage(done: dict[str, Any]) -> dict[str, int]:
    return {
        "prompt_tokens": done["tokens_in"],
        "completion_tokens": done["tokens_out"],
        "total_tokens": done["tokens_in"] + done["tokens_out"],
    }


async def _chunks(
    events: AsyncIterator[ReplyEvent],
    finish: Callable[[], Awaitable[None]],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, str]:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return {"data": json.dumps(body)}

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if event.kind == "token":
                yield chunk({"content": event.data["text"]})
            elif event.kind == "error":
                yield {
                    "data": json.dumps(
                        {
                            "error": {
                                "code": event.data["code"],
                                "message": event.data["message"],
                                "type": "engine_error",
                            }
                        }
                    )
                }
                return
            else:
                yield chunk({}, "stop")
                if include_usage:
                    usage = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(event.data),
                    }
                    yield {"data": json.dumps(usage)}
        yield {"data": "[DONE]"}
    finally:
        await finish()
