"""The `openai` engine: any OpenAI-compatible chat-completions server, streaming, via the official SDK."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2
import openai

from portico.config import get_settings
from portico.engines.base import EngineError, EngineRequest, Sources, Usage, count_tokens
from portico.engines.builtin.engine import BuiltinEngine
from portico.kit.net import EngineAddressRefused, resolve_engine_host

log = logging.getLogger("portico")

# Passages of the knowledge handed to the model with each question (the best matches), when there is knowledge.
CONTEXT_PASSAGES = 3
# A whole (not streamed) completion read into memory; the reply's own length is capped by max_tokens.
MAX_JSON_ANSWER = 4 * 1024 * 1024
NOT_A_COMPLETION = "the model server answered 200 with something that is not a chat completion"


class CheckedNetwork(httpcore2.AsyncNetworkBackend):
    """Opens connections only where an engine may: the host is resolved and every address checked
    as each connection is opened (DNS may answer differently than when the draft was saved, and a
    redirect may point elsewhere), and the socket goes to an address checked, not to a second
    lookup. TLS still checks the certificate against the name."""

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._allowed_hosts = allowed_hosts
        self._network = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await resolve_engine_host(host, port, self._allowed_hosts)
        except EngineAddressRefused as exc:
            # Not an HTTP library's error: it reaches the engine as it is, never retried.
            log.warning("engine connection refused: %s", exc)
            raise EngineError("engine_error", str(exc), retryable=False) from None
        except OSError:
            raise httpcore2.ConnectError(f"{host} could not be resolved") from None
        failure: Exception | None = None
        for address in addresses:
            # In order, as the resolver ranked them: "localhost" is often ::1 first while the
            # model server listens on 127.0.0.1 only.
            try:
                return await self._network.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("engines connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class CheckedTransport(httpx2.AsyncHTTPTransport):
    """httpx's own transport, on a connection pool whose network is `CheckedNetwork`."""

    def __init__(self, *, allowed_hosts: frozenset[str], limits: httpx2.Limits) -> None:
        super().__init__(limits=limits)
        # httpx offers no way to hand its pool a network layer: the pool it made (still empty) is
        # replaced by the same one on ours, with the TLS settings httpx would have used.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedNetwork(allowed_hosts),
        )


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
                # Idle connections are dropped after 4 s, before servers close theirs (uvicorn, and so
                # vLLM or another Portico, after 5 s): a reused connection the server just closed
                # would fail the reply, and the engine does not retry.
                # The SDK's own pool stops at 1,000 connections: the 1,001st concurrent reply to one
                # model server would wait and time out (bench/chat.py).
                http_client=openai.DefaultAsyncHttpxClient(
                    transport=CheckedTransport(
                        allowed_hosts=get_settings().engine_hosts,
                        limits=httpx2.Limits(
                            max_connections=20_000, max_keepalive_connections=200, keepalive_expiry=4.0
                        ),
                    )
                ),
            )

        return self.clients.lease(key, make)

    async def aclose(self) -> None:
        await self.clients.aclose()

    async def _system_prompt(self, request: EngineRequest) -> tuple[str, tuple[str, ...]]:
        """The instructions, and the passages of the knowledge that best match the question under
        their titles (a whole knowledge text could outgrow the model's context, and the titles let
        the reply name its sources); with the titles of the sections given."""
        prompt = request.instructions.strip()
        if not request.knowledge.strip():
            return prompt, ()
        index = await self._retriever.index_for(request)
        hits = index.search(request.prompt, k=CONTEXT_PASSAGES)
        if not hits:
            return prompt, ()
        blocks = [
            f"### {hit.passage.title}\n{hit.passage.text}" if hit.passage.title else hit.passage.text for hit in hits
        ]
        prompt += "\n\nKnowledge (answer from it when it is relevant):\n" + "\n\n".join(blocks)
        return prompt.strip(), tuple(dict.fromkeys(hit.passage.title for hit in hits if hit.passage.title))

    async def stream(self, request: EngineRequest) -> AsyncIterator[str | Sources | Usage]:
        config = request.engine
        messages: list[dict[str, str]] = []
        system, given = await self._system_prompt(request)
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
        async with self._lease(config, request.secrets.get("api_key")) as client:
            try:
                # The SDK's client (its errors, retries, authentication), without its typed layer:
                # checking the parameters cost 7 ms with 20 turns of history, and building a model
                # of each chunk 0.1 ms, against 2.5 ms for the whole first token (bench/chat.py).
                stream = await client.post(
                    "/chat/completions", cast_to=object, body=body, stream=True, stream_cls=openai.AsyncStream[Any]
                )
                kind = stream.response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/event-stream":
                    recognised = False
                    async for chunk in stream:
                        recognised = recognised or _is_chunk(chunk)
                        text = _text_of(chunk)
                        if text:
                            written.append(text)
                            yield text
                        usage = _usage_of(chunk) or usage
                    if not recognised:
                        raise EngineError("engine_error", NOT_A_COMPLETION, retryable=False)
                elif kind.endswith("json"):
                    # A server that ignores "stream": the whole completion at once.
                    whole = await _read_json(stream.response)
                    text = _message_of(whole)
                    if text is None:
                        raise EngineError("engine_error", NOT_A_COMPLETION, retryable=False)
                    if text:
                        written.append(text)
                        yield text
                    usage = _usage_of(whole)
                else:
                    await stream.response.aclose()
                    raise EngineError("engine_error", f"{NOT_A_COMPLETION} ({kind or 'no type'})", retryable=False)
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
            except (openai.OpenAIError, ValueError) as exc:
                # ValueError: an event whose data is not JSON, which the SDK does not catch.
                raise EngineError(
                    "engine_error", f"unexpected answer from the model server ({type(exc).__name__})", retryable=False
                ) from None
        yield Sources(titles=given)
        yield usage or Usage(count_tokens(" ".join(m["content"] for m in messages)), count_tokens("".join(written)))


def _is_chunk(chunk: Any) -> bool:
    return isinstance(chunk, dict) and (isinstance(chunk.get("choices"), list) or isinstance(chunk.get("usage"), dict))


async def _read_json(response: httpx2.Response) -> Any:
    body = bytearray()
    async for part in response.aiter_bytes():
        body += part
        if len(body) > MAX_JSON_ANSWER:
            await response.aclose()
            raise EngineError("engine_error", "the model server's answer is too large", retryable=False)
    return json.loads(body)


def _message_of(whole: Any) -> str | None:
    choices = whole.get("choices") if isinstance(whole, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


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
