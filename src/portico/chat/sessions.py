"""Guest sessions: admitted by the gate, resumed with the session's token, ended.

A session is also ended lazily when it is next touched after its time ran out (inactivity or
maximum duration). Going offline, deleting the assistant and revoking a link end running
sessions at once (chat/lifecycle.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from portico.access import codes
from portico.access.gate import KEY_PREFIX, Admission, GateRefusal, Refused, decide
from portico.chat.records import AssistantFacts, DailyCaps, LinkFacts, MessageRecord, OpenSession, SessionRecord
from portico.chat.store import GuestStore
from portico.errors import InvalidToken
from portico.kit.crypto import digest, is_well_formed, new_token
from portico.kit.i18n import N_
from portico.models import utcnow
from portico.vocabulary import INVALID_SESSION_TOKEN, Channel, EndReason, Refusal, ShareMode, Status
from portico.widget.domains import allows

TOKEN_PREFIX = "pts_"
# Asked once the assistant is known, before an access code is checked: with the assistant's id when
# its code will be checked, else None. Raises to refuse a client past its failed secrets (the rate
# limits, access/ratelimit.py `Guard.code_lockout`).
Lockout = Callable[[int | None], None]


class InvalidSessionToken(InvalidToken):
    code = INVALID_SESSION_TOKEN
    message = N_("This session token does not belong to this session.")


async def ask_gate(
    store: GuestStore,
    *,
    public_id: str | None,
    key: str | None,
    widget_id: str | None = None,
    access_code: str | None = None,
    count_refusal: bool = False,
    lockout: Lockout | None = None,
) -> Admission:
    """The gate's answer without taking a use (what the chat page shows before Start).

    Raises `Refused`; with `count_refusal`, a refusal naming a known assistant is first counted
    in Metrics (the chat page asks so once per page load). A wrong access code is always counted:
    each one is a code someone typed (the chat page asks with the code the guest just entered),
    not a reload.
    """
    decision = await _decide(
        store, public_id=public_id, widget_id=widget_id, key=key, access_code=access_code, lockout=lockout
    )
    if isinstance(decision, GateRefusal):
        if count_refusal or decision.code == Refusal.ACCESS_CODE_INVALID:
            await _count(store, decision)
        raise Refused(decision)
    return decision


async def _decide(
    store: GuestStore,
    *,
    public_id: str | None,
    widget_id: str | None,
    key: str | None,
    access_code: str | None,
    lockout: Lockout | None = None,
) -> Admission | GateRefusal:
    """Load the gate's facts and ask it.

    A key that finds its link finds its assistant: a public id or widget id given with it that
    names no assistant (rotated since the page or the snippet was made) is ignored, so a widget
    with `data-key` and a private link opened on a stale page survive every rotation. One that
    names *another* existing assistant still refuses the key (row 1b).
    """
    link, assistant, retired_from = await _find(store, public_id=public_id, widget_id=widget_id, key=key)
    named = public_id is not None or widget_id is not None
    code_valid: bool | None = None
    coded = assistant if access_code is not None and key is None and assistant and assistant.access_code_hash else None
    if lockout is not None:
        lockout(coded.id if coded is not None else None)
    if coded is not None and coded.access_code_hash and access_code is not None:
        code_valid = await codes.matches(coded.access_code_hash, access_code)
    return decide(
        public_id_given=named,
        key_given=key is not None,
        assistant=assistant,
        link=link,
        now=utcnow(),
        access_code_valid=code_valid,
        key_retired_from=retired_from,
    )


async def _find(
    store: GuestStore, *, public_id: str | None, widget_id: str | None, key: str | None
) -> tuple[LinkFacts | None, AssistantFacts | None, int | None]:
    """The link and assistant a request names, and (for an unknown key) the link it was retired from."""
    link: LinkFacts | None = None
    assistant: AssistantFacts | None = None
    retired_from: int | None = None
    if key is not None and is_well_formed(key, KEY_PREFIX):
        found = await store.facts_by_key(digest(key))
        if found is not None:
            link, assistant = found
        else:
            # Only unknown keys pay for this read: an old link's guest hears that it was replaced.
            retired_from = await store.retired_key(digest(key))
    named = public_id is not None or widget_id is not None
    if named and not _names(assistant, public_id=public_id, widget_id=widget_id):
        other = await (
            store.facts_by_public_id(public_id) if public_id is not None else store.facts_by_widget_id(widget_id or "")
        )
        if other is not None or link is None:
            assistant = other
    return link, assistant, retired_from


async def widget_assistant(store: GuestStore, *, widget_id: str, key: str | None) -> AssistantFacts | None:
    """The assistant a widget's snippet reaches, found as its frame will find it (a key that finds
    its link wins over a rotated widget id); None when the snippet reaches none. Counts nothing."""
    _, assistant, _ = await _find(store, public_id=None, widget_id=widget_id, key=key)
    return assistant


def _names(assistant: AssistantFacts | None, *, public_id: str | None, widget_id: str | None) -> bool:
    if assistant is None:
        return False
    return assistant.public_id == public_id if public_id is not None else assistant.widget_id == widget_id


async def _count(store: GuestStore, refusal: GateRefusal) -> None:
    if refusal.assistant_id is not None:
        await store.count_refusal(assistant_id=refusal.assistant_id, code=refusal.code, now=utcnow())


async def start_session(
    store: GuestStore,
    *,
    public_id: str | None,
    key: str | None,
    channel: Channel,
    widget_id: str | None = None,
    access_code: str | None = None,
    origin: str | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
    lockout: Lockout | None = None,
) -> tuple[OpenSession, str]:
    """Start a session through the gate, committed when this returns; refusals are counted.

    `check` sees the admitted version's session settings before any use is taken, and may
    refuse the request by raising (the OpenAI-compatible endpoint checks its whole request).
    """
    decision = await _decide(
        store, public_id=public_id, widget_id=widget_id, key=key, access_code=access_code, lockout=lockout
    )
    if isinstance(decision, Admission) and channel == Channel.WIDGET:
        if not allows(list(decision.assistant.allowed_domains), origin):
            decision = GateRefusal(Refusal.ORIGIN_NOT_ALLOWED, decision.assistant.id)
    if isinstance(decision, GateRefusal):
        await _count(store, decision)
        raise Refused(decision)
    assistant = decision.assistant
    assert assistant.published_version is not None and assistant.settings is not None
    if check is not None:
        check(assistant.settings)
    token = new_token(TOKEN_PREFIX)
    now = utcnow()
    values: dict[str, Any] = {
        "assistant_id": assistant.id,
        "version": assistant.published_version,
        "channel": channel.value,
        "token_digest": digest(token),
        "now": now,
    }
    # The daily quotas are checked by the store in the start's own transaction (0 = none).
    values["daily"] = DailyCaps(sessions=assistant.sessions_per_day, tokens=assistant.tokens_per_day)
    try:
        if decision.link is None:
            session_id = await store.start_session(**values)
        else:
            session_id, sessions_used = await store.start_session_taking_use(**values, link_id=decision.link.id)
            decision = decision.with_sessions_used(sessions_used)
    except Refused as refused:
        # A daily quota, or a link with no use left (or deleted, paused or ended) since the gate looked.
        await _count(store, refused.refusal)
        raise
    session = SessionRecord(
        id=session_id,
        assistant_id=assistant.id,
        version_number=assistant.published_version,
        link_id=decision.link.id if decision.link else None,
        channel=channel.value,
        token_digest=values["token_digest"],
        started_at=now,
        last_activity_at=now,
        ended_at=None,
        end_reason=None,
    )
    opened = OpenSession(
        session,
        assistant,
        decision.link,
        assistant.settings,
        assistant.greeting,
        assistant.published_digest,
        assistant.starters,
    )
    return opened, token


async def count_refusal(store: GuestStore, refusal: GateRefusal) -> None:
    """Count a refusal met after the start (a message refused by a quota) in Metrics."""
    await _count(store, refusal)


def expiry(
    *, started_at: datetime, last_activity_at: datetime, settings: dict[str, Any], now: datetime
) -> tuple[EndReason, datetime] | None:
    """Why and when a session ended by time, or None while it has time left."""
    idle_end = last_activity_at + timedelta(seconds=settings["inactivity_timeout"])
    max_end = started_at + timedelta(seconds=settings["max_duration"])
    if now >= min(idle_end, max_end):
        # Record the moment it really ended, not the moment we noticed.
        return (EndReason.MAX_DURATION, max_end) if max_end <= idle_end else (EndReason.INACTIVITY, idle_end)
    return None


def _live_refusal(opened: OpenSession) -> GateRefusal | None:
    if opened.assistant is None:
        return GateRefusal(Refusal.NOT_FOUND)
    assistant_id = opened.assistant.id
    if opened.assistant.status != Status.LIVE:
        return GateRefusal(Refusal.ASSISTANT_OFFLINE, assistant_id)
    if opened.link is not None and opened.link.revoked:
        return GateRefusal(Refusal.LINK_REVOKED, assistant_id)
    if opened.link is None and opened.assistant.share_mode != ShareMode.PUBLIC:
        return GateRefusal(Refusal.KEY_REQUIRED, assistant_id)
    return None


async def open_session(store: GuestStore, *, session_id: int, token: str) -> OpenSession:
    """Find a guest's session by id and token, and end it now if its time has run out.

    Raises the gate's refusal when the assistant is offline or gone or the link revoked, as a
    new start would be refused. (Those changes end the session themselves: chat/lifecycle.py.)
    """
    opened = await store.open_session(session_id)
    if (
        opened is None
        or opened.session.channel == Channel.PREVIEW
        or not hmac.compare_digest(opened.session.token_digest, digest(token))
    ):
        raise InvalidSessionToken()
    refusal = _live_refusal(opened)
    if refusal is not None:
        raise Refused(refusal)
    session = opened.session
    if session.ended_at is None:
        times = {"started_at": session.started_at, "last_activity_at": session.last_activity_at}
        if (expired := expiry(**times, settings=opened.settings, now=utcnow())) is not None:
            return await end_session(store, opened=opened, reason=expired[0], at=expired[1])
    return opened


async def end_session(
    store: GuestStore, *, opened: OpenSession, reason: EndReason, at: datetime | None = None
) -> OpenSession:
    """End the session if it is still open; the session as it now is."""
    if opened.session.ended_at is not None:
        return opened
    at = at or utcnow()
    if not await store.end_session(opened.session.id, reason=reason, at=at):
        # Ended meanwhile by someone else (the sweep, the owner): read what was recorded.
        found = await store.open_session(opened.session.id)
        assert found is not None
        return replace(opened, session=found.session)
    return replace(opened, session=replace(opened.session, ended_at=at, end_reason=reason.value))


async def transcript(store: GuestStore, opened: OpenSession) -> list[MessageRecord]:
    """The session's messages, oldest first, as the guest sees them on resume."""
    return await store.transcript(opened.session.id)


async def page_facts(
    store: GuestStore, *, public_id: str | None = None, widget_id: str | None = None
) -> tuple[AssistantFacts | None, Admission | GateRefusal]:
    """What the chat page (or the widget's frame) shows as it opens: the assistant its public id
    (or widget id) names, and the gate's answer for a guest without a key. Counts and takes nothing."""
    if widget_id is not None:
        facts = await store.facts_by_widget_id(widget_id)
    else:
        facts = await store.facts_by_public_id(public_id or "")
    decision = decide(public_id_given=True, key_given=False, assistant=facts, link=None, now=utcnow())
    return facts, decision
