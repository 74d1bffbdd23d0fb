"""The `openai` engine: any OpenAI-compatible chat-completions server, streaming, via the official SDK."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from portico.engines.base import EngineError, EngineRequest, Usage, count_tokens
from portico.engines.builtin import BuiltinEngine

# Passages of the knowledge text handed to the model with each question, when there is knowledge.
CONTEXT_PASSAGES = 3


class ClientPool:
    """The least recently used clients, at most `size`; one evicted is closed once no reply uses it.

    A client holds a connection pool (sockets to the model server): dropping it unclosed would
    leave them open until the garbage collector came by, and closing it under a reply still
    streaming would cut that reply.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._kept: OrderedDict[str, _Lease] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    @asynccontextmanager
    async def lease(self, key: str, make: Callable[[], openai.AsyncOpenAI]) -> AsyncIterator[openai.AsyncOpenAI]:
        lease = self._kept.get(key)
        if lease is None:
            lease = self._kept[key] = _Lease(make())
        self._kept.move_to_end(key)
        lease.users += 1
        try:
            while len(self._kept) > self._size:
                await self._evict(self._kept.popitem(last=False)[1])
            yield lease.client
        finally:
            lease.users -= 1
            if lease.evicted and lease.users == 0:
                await lease.client.close()

    async def aclose(self) -> None:
        while self._kept:
            await self._evict(self._kept.popitem()[1])

    @staticmethod
    async def _evict(lease: _Lease) -> None:
        lease.evicted = True
        if lease.users == 0:
            await lease.client.close()


@dataclass
class _Lease:
    client: openai.AsyncOpenAI
    users: int = 0
    evicted: bool = False


class OpenAIEngine:
    name = "openai"
    reads_history = True

    def __init__(self, retriever: BuiltinEngine, cache_size: int = 32) -> None:
        self._retriever = retriever
        self.clients = ClientPool(cache_size)

    def _lease(self, config: dict[str, Any], api_key: str | None) -> AbstractAsyncContextManager[openai.AsyncOpenAI]:
        # One client (and so one connection pool) per server, key and timeout, reused across messages.
        key = hashlib.sha256(f"{config['base_url']}\0{api_key}\0{config['timeout']}".encode()).hexdigest()

        def make() -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(
                base_url=config["base_url"],
                # The SDK insists on a key; servers without authentication ignore this one.
                api_key=api_key or "no-key",
                timeout=config["timeout"],
                max_retries=0,
                # The SDK's own pool stops at 1,000 connections: the 1,001st concurrent reply to one
                # model server would wait and time out (bench/chat.py).
                http_client=openai.DefaultAsyncHttpxClient(
                    limits=httpx2.Limits(max_connections=20_000, max_keepalive_connections=200)
                ),
            )

        return self.clients.lease(key, make)

    async def aclose(self) -> None:
        await self.clients.aclose()

    async def _system_prompt(self, request: EngineRequest) -> str:
        prompt = request.instructions.strip()
        if request.knowledge.strip():
            index = await self._retriever.index_for(request)
            found = index.search(request.prompt, k=CONTEXT_PASSAGES)
            if found:
                context = "\n\n".join(f"{p.title}\n{p.text}".strip() for p, _ in found)
                prompt += "\n\nReference material (answer from it when it is relevant):\n" + context
        return prompt

    async def stream(self, request: EngineRequest) -> AsyncIterator[str | Usage]:
        config = request.engine
        messages: list[dict[str, str]] = []
        system = await self._system_prompt(request)
        if system:
            messages.append({"role": "system", "content": system})
        messages += [{"role": turn.role, "content": turn.content} for turn in request.history]
        messages.append({"role": "user", "content": request.prompt})
        usage: Usage | None = None
        written: list[str] = []
        body = {
            "model": config["model"],
            "messages": messages,
            "temperature": config.get("temperature", 0.7),
            "max_tokens": config.get("max_tokens", 512),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # Leased for the whole reply: the pool closes an evicted client only once no reply uses it.
        async with self._lease(config, request.api_key) as client:
            try:
                # The SDK's client (its errors, retries, authentication), without its typed layer:
                # checking the parameters cost 7 ms with 20 turns of history, and building a model
                # of each chunk 0.1 ms, against 2.5 ms for the whole first token (bench/chat.py).
                stream = await client.post(
                    "/chat/completions", cast_to=object, body=body, stream=True, stream_cls=openai.AsyncStream[Any]
                )
                async for chunk in stream:
                    text = _text_of(chunk)
                    if text:
                        written.append(text)
                        yield text
                    usage = _usage_of(chunk) or usage
            except openai.APITimeoutError:
                raise EngineError("engine_timeout", f"no answer within {config['timeout']} s", retryable=True) from None
            except openai.APIConnectionError:
                raise EngineError(
                    "engine_unreachable", "the model server could not be reached", retryable=True
                ) from None
            except openai.APIStatusError as exc:
                retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
                raise EngineError(
                    "engine_error", f"the model server answered {exc.status_code}", retryable=retryable
                ) from None
            except openai.OpenAIError as exc:
                raise EngineError(
                    "engine_error", f"unexpected answer from the model server ({type(exc).__name__})", retryable=False
                ) from None
        yield usage or Usage(count_tokens(" ".join(m["content"] for m in messages)), count_tokens("".join(written)))


def _text_of(chunk: Any) -> str | None:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    if not isinstance(choices[0].get("delta"), dict):
        return None
    content = choices[0]["delta"].get("content")
    return content if isinstance(content, str) else None


def _usage_of(chunk: Any) -> Usage | None:
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(prompt, completion) if isinstance(prompt, int) and isinstance(completion, int) else None
