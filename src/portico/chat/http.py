"""What the guest-facing routes share (chat/api.py, chat/views.py, compat/api.py) and the owner's
preview (assistants/views.py): the guest store and cut-offs as dependencies, and a reply as
server-sent events or until its client goes away. HTTP helpers, not routes: any router or view
may import this module, so none has to import another's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sse_starlette import EventSourceResponse
from sse_starlette.event import ensure_bytes

from portico.chat.cutoff import Cutoffs
from portico.chat.store import GuestStore
from portico.config import Settings
from portico.errors import ClientDisconnected

T = TypeVar("T")


async def get_store(request: Request) -> GuestStore:
    return request.app.state.store  # type: ignore[no-any-return]  # app.state is untyped


async def get_cutoffs(request: Request) -> Cutoffs:
    return request.app.state.cutoffs  # type: ignore[no-any-return]  # app.state is untyped


StoreDep = Annotated[GuestStore, Depends(get_store)]
CutoffsDep = Annotated[Cutoffs, Depends(get_cutoffs)]


def reply_error_status(error: dict[str, Any]) -> int:
    return 502 if str(error["code"]).startswith("engine_") else 403


def event_stream(events: AsyncIterator[dict[str, str]], settings: Settings) -> EventSourceResponse:
    """A reply as server-sent events; a guest who stops reading is dropped after the send timeout,
    which stops the engine (the reply is saved as `disconnected`)."""
    return EventSourceResponse(
        _together(events),
        ping=15,
        send_timeout=settings.send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _together(events: AsyncIterator[dict[str, str]]) -> AsyncIterator[bytes]:
    """The events, encoded, with those already made by the time the guest's connection is free sent
    in one write: a built-in engine's whole answer (its words come at once) goes out as one write of
    many `token` events instead of one write each, the same bytes for the client. The events are
    made in a task of their own, which a cut-off or the guest going away cancels as before."""
    ready: list[bytes] = []
    wake = asyncio.Event()
    finished = False

    async def make() -> None:
        nonlocal finished
        try:
            async for event in events:
                ready.append(ensure_bytes(event, EventSourceResponse.DEFAULT_SEPARATOR))
                wake.set()
        finally:
            finished = True
            wake.set()

    maker = asyncio.ensure_future(make())
    maker.add_done_callback(_retrieved)
    try:
        while True:
            if ready:
                batch = b"".join(ready)
                ready.clear()
                yield batch
            elif finished:
                break
            else:
                wake.clear()
                await wake.wait()
        await maker  # the maker's error, if any, is the response's
    finally:
        if not maker.done():
            maker.cancel()  # the guest went away: the reply is saved as `disconnected`
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(maker)


def _retrieved(task: asyncio.Future[None]) -> None:
    # An error nobody is left to receive (the guest went away) is not logged as "never retrieved".
    if not task.cancelled():
        task.exception()


async def until_disconnected(request: Request, events: AsyncIterator[T]) -> AsyncIterator[T]:
    """`events` while the client is still there. Without this a JSON reply whose client went away
    would run the engine to its end; with it the engine is stopped and the reply saved as
    `disconnected` (messages.stream_reply)."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        iterator = aiter(events)
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                raise ClientDisconnected()
            try:
                yield step.result()
            except StopAsyncIteration:
                return
    finally:
        gone.cancel()


async def _disconnected(request: Request) -> None:
    # The body has been read: what the server sends next is the client's going away.
    while (await request.receive())["type"] != "http.disconnect":
        pass
