"""The gate: who may start a session. See docs/design.md, "The gate".

`decide` is a pure function over what the database says about an assistant and a private link
(the guest store's records, chat/records.py); it returns an admission or a refusal, both plain values. Loading those facts and taking a link's
use (in the same transaction that inserts the session, so a link with N uses admits exactly N
sessions) is the guest store's work (chat/store.py); counting refusals and raising them is the
session service's (chat/sessions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from portico.chat.records import AssistantFacts, LinkFacts
from portico.errors import PorticoError
from portico.kit.i18n import gettext
from portico.vocabulary import REFUSAL_MESSAGES, REFUSAL_STATUS, Refusal, ShareMode, Status

KEY_PREFIX = "ptk_"


@dataclass(frozen=True)
class Admission:
    assistant: AssistantFacts
    link: LinkFacts | None

    def with_sessions_used(self, sessions_used: int) -> Admission:
        assert self.link is not None
        return replace(self, link=replace(self.link, sessions_used=sessions_used))


@dataclass(frozen=True)
class GateRefusal:
    """Why the gate said no, and to which assistant (None when it names none we know)."""

    code: Refusal
    assistant_id: int | None = None
    # Seconds until asking again can succeed (a daily quota: the next UTC midnight).
    retry_after: int | None = None

    @property
    def message(self) -> str:
        return gettext(REFUSAL_MESSAGES[self.code])


class Refused(PorticoError):
    """A refusal raised to the error handler: its status, code and the guest's sentence."""

    def __init__(self, refusal: GateRefusal) -> None:
        self.refusal = refusal
        self.code = refusal.code.value
        self.status = REFUSAL_STATUS.get(refusal.code, 403)
        # A quota's refusal says when to come back (the handler sends it as Retry-After).
        self.retry_after = refusal.retry_after
        super().__init__(refusal.message)


def decide(
    *,
    public_id_given: bool,
    key_given: bool,
    assistant: AssistantFacts | None,
    link: LinkFacts | None,
    now: datetime,
    access_code_valid: bool | None = None,
    key_retired_from: int | None = None,
) -> Admission | GateRefusal:
    """Admit, or say why not, in the order of the table in docs/design.md.

    `public_id_given`: a public id or a widget id was given. `access_code_valid`: None when no
    access code was given, else whether it matches the assistant's (the caller verifies it, off
    the event loop, and only when the assistant has one: argon2 costs CPU on purpose).
    `key_retired_from`: the key is no link's but was one of this assistant's links' before they
    were reissued (an unknown key that says so instead of `link_invalid`).
    """
    if key_given and not public_id_given and link is None:
        if key_retired_from is not None:
            return GateRefusal(Refusal.LINK_REISSUED, key_retired_from)
        return GateRefusal(Refusal.LINK_INVALID)
    if assistant is None:
        return GateRefusal(Refusal.NOT_FOUND)
    if key_given and link is not None and link.assistant_id != assistant.id:
        return GateRefusal(Refusal.LINK_INVALID, assistant.id)
    if assistant.published_version is None:
        return GateRefusal(Refusal.NOT_PUBLISHED, assistant.id)
    if assistant.status != Status.LIVE:
        return GateRefusal(Refusal.ASSISTANT_OFFLINE, assistant.id)
    if key_given:
        if link is None:
            reissued = key_retired_from == assistant.id
            return GateRefusal(Refusal.LINK_REISSUED if reissued else Refusal.LINK_INVALID, assistant.id)
        if link.revoked:
            return GateRefusal(Refusal.LINK_REVOKED, assistant.id)
        if link.paused:
            return GateRefusal(Refusal.LINK_PAUSED, assistant.id)
        if link.expired(now):
            return GateRefusal(Refusal.LINK_EXPIRED, assistant.id)
        if link.exhausted:
            return GateRefusal(Refusal.LINK_EXHAUSTED, assistant.id)
        return Admission(assistant, link)
    if assistant.share_mode != ShareMode.PUBLIC:
        return GateRefusal(Refusal.KEY_REQUIRED, assistant.id)
    if assistant.public_link_expires_at is not None and assistant.public_link_expires_at <= now:
        return GateRefusal(Refusal.LINK_EXPIRED, assistant.id)
    if assistant.access_code_hash is not None:
        if access_code_valid is None:
            return GateRefusal(Refusal.ACCESS_CODE_REQUIRED, assistant.id)
        if not access_code_valid:
            return GateRefusal(Refusal.ACCESS_CODE_INVALID, assistant.id)
    return Admission(assistant, None)


def link_refusal(link: LinkFacts | None, *, assistant_id: int, now: datetime) -> GateRefusal:
    """Why a link's use could not be taken after the gate admitted it (the store's conditional
    UPDATE found it changed): the first of rows 5 to 6 that now holds."""
    if link is None or link.revoked:
        code = Refusal.LINK_REVOKED
    elif link.paused:
        code = Refusal.LINK_PAUSED
    elif link.expired(now):
        code = Refusal.LINK_EXPIRED
    else:
        code = Refusal.LINK_EXHAUSTED
    return GateRefusal(code, assistant_id)
