"""A guest's spoken message (issue 23): one utterance is checked, transcribed and dropped; its
words are then the guest's message, through the same service as a typed one (chat/messages.py),
so the same gate, cut-offs, quotas and session rules apply.

The audio is never stored nor logged: only its length is kept with the message (`audio_ms`).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from portico.chat.records import SessionEnded
from portico.chat.sessions import open_session
from portico.chat.store import GuestStore
from portico.config import Settings
from portico.engines import PROVIDERS, EngineError, Kind, secrets, speech
from portico.errors import InvalidRequest, PorticoError
from portico.kit.crypto import Vault
from portico.kit.i18n import N_, format_number, gettext
from portico.vocabulary import END_MESSAGES, EndReason

# What a browser's MediaRecorder (Chromium, Firefox: webm or ogg; Safari: mp4) or a WAV file sends.
AUDIO_TYPES = ("audio/webm", "audio/ogg", "audio/mp4", "audio/wav", "audio/x-wav", "audio/wave")


class VoiceOff(PorticoError):
    status = 403
    code = "voice_off"
    message = N_("This assistant does not take spoken messages. Please type your message instead.")


class AudioType(PorticoError):
    status = 415
    code = "audio_type"
    message = N_("Send the recording as WebM, Ogg, MP4 or WAV audio.")


class AudioTooLarge(PorticoError):
    status = 413
    code = "audio_too_large"

    def __init__(self, seconds: int) -> None:
        sentence = gettext("This recording is too long: at most {seconds} seconds, please.")
        super().__init__(sentence.format(seconds=format_number(seconds)))


class AudioUnreadable(InvalidRequest):
    code = "audio_unreadable"
    message = N_("This recording could not be read as audio. Please try again, or type your message.")


class AudioEmpty(InvalidRequest):
    code = "audio_empty"
    message = N_("The recording is empty. Please speak, then send it again.")


class NothingHeard(InvalidRequest):
    code = "nothing_heard"
    message = N_("Nothing was heard in this recording. Please speak a little louder, or type your message.")


class SpeechBusy(PorticoError):
    status = 503
    code = "busy"
    message = N_("Many guests are speaking just now. Please try again in a few seconds.")
    retry_after = 2


class SpeechUnavailable(PorticoError):
    status = 502
    code = "speech_unavailable"
    message = N_("Your recording could not be turned into text just now. Please try again, or type your message.")


@dataclass(frozen=True)
class Heard:
    text: str
    audio_ms: int


def audio_type(content_type: str) -> str:
    """The recording's media type as sent (`audio/webm;codecs=opus`), or `AudioType` when not audio we take."""
    if content_type.split(";")[0].strip().lower() not in AUDIO_TYPES:
        raise AudioType()
    return content_type


async def hear(
    store: GuestStore, *, session_id: int, token: str, request: Request, vault: Vault, settings: Settings
) -> Heard:
    """The words of one utterance. Checked in the order that costs least: its type and declared
    size, then the session and the assistant's voice setting, then the bytes, then the sound."""
    content_type = audio_type(request.headers.get("content-type", ""))
    limit = settings.voice_max_bytes
    too_large = AudioTooLarge(settings.voice_max_seconds)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    opened = await open_session(store, session_id=session_id, token=token)
    session = opened.session
    if session.ended_at is not None:
        reissued = session.end_reason == EndReason.LINK_REISSUED
        raise SessionEnded(gettext(END_MESSAGES[EndReason.LINK_REISSUED]) if reissued else None)
    config = await store.version_config(
        assistant_id=session.assistant_id, number=session.version_number, digest=opened.version_digest
    )
    voice = config.get("voice", {})
    if not voice.get("input"):
        raise VoiceOff()
    data = await _body(request, limit, too_large)
    if not data:
        raise AudioEmpty()
    stt = voice.get("speech_to_text", {"type": "builtin"})
    try:
        utterance = await speech.decode(data, content_type)
        if utterance.milliseconds == 0:
            raise AudioUnreadable()  # a header and no sound: a recording cut short
        if utterance.milliseconds > settings.voice_max_seconds * 1000:
            raise too_large
        if utterance.silent:
            raise NothingHeard()
        provider = PROVIDERS.get(Kind.SPEECH_TO_TEXT, stt["type"])
        transcriber: speech.SpeechToText = PROVIDERS.made(Kind.SPEECH_TO_TEXT, stt["type"])
        text = await transcriber.transcribe(utterance, stt, secrets.decrypted(provider, stt, vault))
    except EngineError as exc:
        if exc.code == "busy":
            raise SpeechBusy() from None
        if exc.code == "audio_unreadable":
            raise AudioUnreadable() from None
        raise SpeechUnavailable() from None
    if not text.strip():
        raise NothingHeard()
    return Heard(text.strip(), utterance.milliseconds)


async def _body(request: Request, limit: int, too_large: PorticoError) -> bytes:
    """The request's body, read no further than `limit` bytes (a declared length may be absent or wrong)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise AudioUnreadable() from None
    return b"".join(chunks)
