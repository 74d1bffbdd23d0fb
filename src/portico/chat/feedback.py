"""A guest's rating of a reply: up or down, optionally why and a comment (issue 14).

Authorised by the session's token, like a message. A session that has ended may still be rated
(the guest often rates the last reply after leaving); an assistant gone offline or deleted, or a
link deleted, refuses it, as it refuses everything from that session. Only a finished reply of
the same session can be rated, and a second rating replaces the first.
"""

from __future__ import annotations

from portico.chat.sessions import open_session
from portico.chat.store import GuestStore
from portico.models import utcnow
from portico.vocabulary import FeedbackReason, Rating


async def rate_reply(
    store: GuestStore,
    *,
    session_id: int,
    token: str,
    message_id: int,
    rating: Rating,
    reason: FeedbackReason | None,
    comment: str | None,
) -> str | None:
    """Save the rating; the comment as kept (None when blank, or when the owner keeps no transcripts:
    a comment is the guest's own words, like a message). The store refuses what is not a finished
    reply of this session (chat/records.py: `ReplyNotFound`, `NotAReply`, `ReplyInProgress`)."""
    opened = await open_session(store, session_id=session_id, token=token)
    kept = comment.strip() if comment is not None and opened.store_text else None
    await store.rate_reply(
        session_id=session_id,
        message_id=message_id,
        rating=rating.value,
        reason=reason.value if reason is not None else None,
        comment=kept or None,
        now=utcnow(),
    )
    return kept or None
