"""Helpers for tests that talk as a guest."""

from __future__ import annotations

import json

import httpx


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


def parse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


async def say(http: httpx.AsyncClient, session: dict, content: str, *, stream: bool = False) -> httpx.Response:
    headers = bearer(session)
    if stream:
        headers["Accept"] = "text/event-stream"
    return await http.post(
        f"/api/v1/chat/sessions/{session['session_id']}/messages", json={"content": content}, headers=headers
    )
