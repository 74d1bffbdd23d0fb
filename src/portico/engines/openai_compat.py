"""The `openai` engine: any OpenAI-compatible chat-completions server, streaming, via the official SDK."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from portico.engines.base import EngineError, EngineRequest, Usage, count_tokens
from portico.engines.builtin import BuiltinEngine

# Passages of the knowledge text handed to the model with each question, when there is knowledge.
CONTEXT_PASSAGES = 3


class OpenAIEngine:
    name = "openai"
    reads_history = True

    def __init__(self, retriever: BuiltinEngine, cache_size: int = 32) -> None:
        self._retriever = retriever
        self._clients: OrderedDict[str, openai.AsyncOpenAI] = OrderedDict()
        self._cache_size = cache_size

    def _client(self, config: dict[str, Any], api_key: str | None) -> openai.AsyncOpenAI:
        # One client (and so one connection pool) per server, key and timeout, reused across messages.
        key = hashlib.sha256(f"{config['base_url']}\0{api_key}\0{config['timeout']}".encode()).hexdigest()
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                base_url=config["base_url"],
                # The SDK insists on a key; servers without authentication ignore this one.
                api_key=api_key or "no-key",
                timeout=config["timeout"],
                max_retries=0,
                # The SDK's own pool stops at 1,000 connections: the 1,001st concurrent reply to one
                # model server would wait and time out (bench/chat.py).
                http_client=openai.DefaultAsyncHttpxClient(
                    limits=httpx.Limits(max_connections=20_000, max_keepalive_connections=200)
                ),
            )
            while len(self._clients) > self._cache_size:
                self._clients.popitem(last=False)
        self._clients.move_to_end(key)
        return self._clients[key]

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
        client = self._client(config, request.api_key)
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
            raise EngineError("engine_unreachable", "the model server could not be reached", retryable=True) from None
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
