"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, and Portico's BodyLimit (handlers.py) times out a body
that stops arriving, but nothing closes a connection whose request headers trickle in one byte at a
time (slowloris): each one would hold a connection slot (PORTICO_MAX_CONNECTIONS) for ever. This
protocol gives every request's headers PORTICO_REQUEST_TIMEOUT seconds from the connection (the
first request) or from the request's first byte (the next ones on a kept-alive connection).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from portico.config import get_settings


class HeadersOnTime(HttpToolsProtocol):
    _headers_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it too
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._headers_deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._headers_deadline = self.loop.call_later(get_settings().request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _too_slow(self) -> None:
        self._headers_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
