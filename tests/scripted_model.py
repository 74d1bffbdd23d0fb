"""An OpenAI-compatible chat-completions server on loopback that says what a test needs said.

The model name picks the reply:
- `echo`: the guest's last message, word by word, 15 ms apart (a test writes the reply it wants
  rendered: Markdown, an HTML payload...).
- `cut`: the first half of the guest's last message, then an error event in the stream.
- `nested`: about 200 KB of Markdown lists nested ten deep, in 4 KB pieces.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORD_DELAY = 0.015
NESTED_BYTES = 200_000


def nested_lists(size: int = NESTED_BYTES) -> str:
    """Markdown lists ten levels deep, with bold, code and links in the items, `size` characters long."""
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        depth = n % 10
        line = f"{'  ' * depth}- item **{n}** with `code` and [a link](https://example.org/{n})"
        lines.append(line)
        total += len(line) + 1
        n += 1
    return "\n".join(lines)


class ScriptedModel(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        said = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"id": "stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}

        def event(data: dict | str) -> None:
            self.wfile.write(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def piece(text: str) -> None:
            event({**chunk, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})

        model = body["model"]
        if model == "nested":
            text = nested_lists()
            for start in range(0, len(text), 4_000):
                piece(text[start : start + 4_000])
                time.sleep(0.01)
        else:
            words = re.findall(r"\S+\s*|\s+", said)
            if model == "cut":
                words = words[: max(1, len(words) // 2)]
            for word in words:
                piece(word)
                time.sleep(WORD_DELAY)
            if model == "cut":
                event({"error": {"message": "the model stopped", "type": "server_error"}})
                return
        event({**chunk, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
        event("[DONE]")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def scripted_model() -> Iterator[str]:
    """Yields the model server's base URL (`.../v1`)."""
    model = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedModel)
    thread = threading.Thread(target=model.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{model.server_address[1]}/v1"
    finally:
        model.shutdown()
        model.server_close()


def engine(base_url: str, model: str = "echo") -> dict:
    return {"type": "openai", "base_url": base_url, "model": model, "api_key": "sk-stub"}
