"""The product's words as code: every status, share mode, channel, end reason and refusal code.

Models, schemas, services, views, Metrics and the guest pages use these and nothing else; the
schema holds the same values as CHECK constraints (migration 0005). Every sentence a guest reads
about a refusal or an ending comes from here (the chat page and the widget show the server's
`message`, never one of their own), in English, marked `N_` for the message catalogue: translate it
with `kit.i18n.gettext` where a guest is given it. Owners' labels stay English.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from portico.kit.i18n import N_


class Status(StrEnum):
    LIVE = "live"
    OFFLINE = "offline"


class DocumentStatus(StrEnum):
    """A document's state: being converted, readable by the assistant, or not readable (with why)."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ShareMode(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class Channel(StrEnum):
    LINK = "link"
    WIDGET = "widget"
    API = "api"
    PREVIEW = "preview"


# The channels a guest can start a session on (preview is the owner's own).
GUEST_CHANNELS = (Channel.LINK, Channel.WIDGET, Channel.API)


class Role(StrEnum):
    GUEST = "guest"
    ASSISTANT = "assistant"


class EndReason(StrEnum):
    GUEST = "guest"
    INACTIVITY = "inactivity"
    MAX_DURATION = "max_duration"
    ASSISTANT_OFFLINE = "assistant_offline"
    ASSISTANT_DELETED = "assistant_deleted"
    LINK_REVOKED = "link_revoked"
    # The owner gave the link a new key: sessions started with the old one end (issue 21).
    LINK_REISSUED = "link_reissued"
    MADE_PRIVATE = "made_private"
    # An OpenAI-compatible request: one session per completion, ended when it is answered.
    COMPLETED = "completed"
    # The instance that was streaming the session's reply stopped (issue: many instances).
    INTERRUPTED = "interrupted"


class Refusal(StrEnum):
    """Why the gate (or a limit after it) said no. The order is the gate's, docs/design.md."""

    NOT_FOUND = "not_found"
    NOT_PUBLISHED = "not_published"
    ASSISTANT_OFFLINE = "assistant_offline"
    LINK_INVALID = "link_invalid"
    LINK_REVOKED = "link_revoked"
    # A key the owner has replaced by reissuing its link: known by its digest (retired_link_keys).
    LINK_REISSUED = "link_reissued"
    LINK_PAUSED = "link_paused"
    LINK_EXPIRED = "link_expired"
    LINK_EXHAUSTED = "link_exhausted"
    KEY_REQUIRED = "key_required"
    ACCESS_CODE_REQUIRED = "access_code_required"
    ACCESS_CODE_INVALID = "access_code_invalid"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    # Not a start but a message: the session has had all the guest messages its assistant allows.
    MESSAGE_LIMIT_REACHED = "message_limit_reached"
    RATE_LIMITED = "rate_limited"


# A session token that does not open its session (chat/sessions.py): a wrong secret, counted against
# its client's address like a guessed key (access/ratelimit.py).
INVALID_SESSION_TOKEN = "invalid_session_token"

REFUSAL_STATUS: dict[Refusal, int] = {
    Refusal.NOT_FOUND: 404,
    Refusal.DAILY_LIMIT_REACHED: 429,
    Refusal.MESSAGE_LIMIT_REACHED: 429,
    Refusal.RATE_LIMITED: 429,
}

REFUSAL_MESSAGES: dict[Refusal, str] = {
    Refusal.NOT_FOUND: N_("This assistant does not exist. The link may have been changed or removed."),
    Refusal.NOT_PUBLISHED: N_("This assistant is not ready yet. Please try again later."),
    Refusal.ASSISTANT_OFFLINE: N_("This assistant is offline right now. Please try again later."),
    Refusal.LINK_INVALID: N_("This link is not valid. Check that you copied all of it."),
    Refusal.LINK_REVOKED: N_("This link has been turned off by the assistant's owner."),
    Refusal.LINK_REISSUED: N_("The assistant's owner replaced this link with a new one. Ask them for the new link."),
    Refusal.LINK_PAUSED: N_("This link is paused by the assistant's owner. Please try again later."),
    Refusal.LINK_EXPIRED: N_("This link has expired. Ask the person who shared it for a new one."),
    Refusal.LINK_EXHAUSTED: N_("This link has no sessions left. Ask the person who shared it for more."),
    Refusal.KEY_REQUIRED: N_("This assistant is private. Open it with the personal link you were given."),
    Refusal.ACCESS_CODE_REQUIRED: N_("This assistant needs an access code. Ask the person who shared it."),
    Refusal.ACCESS_CODE_INVALID: N_("That access code is not right. Check it and try again."),
    Refusal.ORIGIN_NOT_ALLOWED: N_("This assistant cannot be used on this website."),
    Refusal.DAILY_LIMIT_REACHED: N_(
        "This assistant has had all the conversations it can have today. Try again tomorrow."
    ),
    Refusal.MESSAGE_LIMIT_REACHED: N_(
        "This conversation has reached its message limit. Start a new one to keep talking."
    ),
    Refusal.RATE_LIMITED: N_("Too many requests at once. Please wait a moment and try again."),
}

# Owners read these in Metrics ("Refusals at the gate").
REFUSAL_LABELS: dict[Refusal, str] = {
    Refusal.NOT_FOUND: "Unknown assistant",
    Refusal.NOT_PUBLISHED: "Not published",
    Refusal.ASSISTANT_OFFLINE: "Offline",
    Refusal.LINK_INVALID: "Invalid",
    Refusal.LINK_REVOKED: "Revoked",
    Refusal.LINK_REISSUED: "Replaced link",
    Refusal.LINK_PAUSED: "Paused",
    Refusal.LINK_EXPIRED: "Expired",
    Refusal.LINK_EXHAUSTED: "Exhausted",
    Refusal.KEY_REQUIRED: "Key required",
    Refusal.ACCESS_CODE_REQUIRED: "Access code missing",
    Refusal.ACCESS_CODE_INVALID: "Wrong access code",
    Refusal.ORIGIN_NOT_ALLOWED: "Other site",
    Refusal.DAILY_LIMIT_REACHED: "Daily limit",
    Refusal.MESSAGE_LIMIT_REACHED: "Message limit",
    Refusal.RATE_LIMITED: "Rate limited",
}

# What a guest reads when a conversation has ended, by its end reason.
END_MESSAGES: dict[EndReason, str] = {
    EndReason.GUEST: N_("You ended this conversation."),
    EndReason.INACTIVITY: N_("This conversation ended after a period without messages."),
    EndReason.MAX_DURATION: N_("This conversation reached its time limit."),
    EndReason.ASSISTANT_OFFLINE: N_("The assistant went offline, so this conversation has ended."),
    EndReason.ASSISTANT_DELETED: N_("This assistant was removed, so this conversation has ended."),
    EndReason.LINK_REVOKED: N_("Your link was turned off by the assistant's owner, so this conversation has ended."),
    EndReason.LINK_REISSUED: N_(
        "The assistant's owner replaced your link with a new one, so this conversation has ended. "
        "Ask them for the new link."
    ),
    EndReason.MADE_PRIVATE: N_("This assistant is now private, so this conversation has ended."),
    EndReason.COMPLETED: N_("This conversation has ended."),
    EndReason.INTERRUPTED: N_("This conversation was interrupted. Start a new one to keep talking."),
}

END_LABELS: dict[EndReason, str] = {
    EndReason.GUEST: "Ended by guest",
    EndReason.INACTIVITY: "Inactivity",
    EndReason.MAX_DURATION: "Time limit",
    EndReason.ASSISTANT_OFFLINE: "Went offline",
    EndReason.ASSISTANT_DELETED: "Assistant deleted",
    EndReason.LINK_REVOKED: "Link deleted",
    EndReason.LINK_REISSUED: "Link reissued",
    EndReason.MADE_PRIVATE: "Made private",
    EndReason.COMPLETED: "Completed (API)",
    EndReason.INTERRUPTED: "Interrupted",
}


class ReplyError(StrEnum):
    """Why a reply stopped short (`messages.error_code`): the owner cut it (the end reasons that cut
    a reply being streamed), the engine failed, the guest left, or its instance stopped."""

    ASSISTANT_OFFLINE = EndReason.ASSISTANT_OFFLINE.value
    ASSISTANT_DELETED = EndReason.ASSISTANT_DELETED.value
    LINK_REVOKED = EndReason.LINK_REVOKED.value
    LINK_REISSUED = EndReason.LINK_REISSUED.value
    MADE_PRIVATE = EndReason.MADE_PRIVATE.value
    ENGINE_ERROR = "engine_error"
    ENGINE_TIMEOUT = "engine_timeout"
    ENGINE_UNREACHABLE = "engine_unreachable"
    # The guest went away mid-reply (closed the page, lost the connection).
    DISCONNECTED = "disconnected"
    INTERRUPTED = EndReason.INTERRUPTED.value


# What the owner reads beside a reply that stopped short, in a transcript.
REPLY_ERROR_LABELS: dict[ReplyError, str] = {
    ReplyError.ASSISTANT_OFFLINE: "Cut short: the assistant was switched Offline",
    ReplyError.ASSISTANT_DELETED: "Cut short: the assistant was deleted",
    ReplyError.LINK_REVOKED: "Link deleted by the owner",
    ReplyError.LINK_REISSUED: "Cut short: the link was reissued with a new key",
    ReplyError.MADE_PRIVATE: "Cut short: the assistant was made private",
    ReplyError.ENGINE_ERROR: "Engine error: the model server failed or gave an answer Portico could not read",
    ReplyError.ENGINE_TIMEOUT: "Timed out: the reply took longer than its time limit",
    ReplyError.ENGINE_UNREACHABLE: "Engine unreachable: the model server could not be reached",
    ReplyError.DISCONNECTED: "Disconnected: the guest left mid-reply",
    ReplyError.INTERRUPTED: "Interrupted: the Portico instance writing the reply stopped",
}


def reply_error_label(code: str) -> str:
    """The owner's label for a stored error code; a code from an older or newer Portico says so."""
    try:
        return REPLY_ERROR_LABELS[ReplyError(code)]
    except ValueError:
        return f"Stopped short ({code})"


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.LINK: "Link",
    Channel.WIDGET: "Widget",
    Channel.API: "API",
    Channel.PREVIEW: "Preview",
}


class Rating(StrEnum):
    """A guest's verdict on one reply (issue 14: feedback)."""

    UP = "up"
    DOWN = "down"


class FeedbackReason(StrEnum):
    """Why a reply was rated, when the guest says: one of a few choices, plus free text."""

    WRONG = "wrong"
    NOT_ANSWERED = "not_answered"
    UNCLEAR = "unclear"
    OTHER = "other"


# What a guest reads beside each choice, and an owner in Logs.
FEEDBACK_REASON_LABELS: dict[FeedbackReason, str] = {
    FeedbackReason.WRONG: N_("It was wrong"),
    FeedbackReason.NOT_ANSWERED: N_("It did not answer my question"),
    FeedbackReason.UNCLEAR: N_("It was hard to understand"),
    FeedbackReason.OTHER: N_("Something else"),
}


class TeamRole(StrEnum):
    """A member's role in a team (issue 15). The order is rank: an Owner may do what an Admin may."""

    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"


TEAM_ROLE_RANK: dict[TeamRole, int] = {TeamRole.EDITOR: 1, TeamRole.ADMIN: 2, TeamRole.OWNER: 3}

TEAM_ROLE_LABELS: dict[TeamRole, str] = {TeamRole.OWNER: "Owner", TeamRole.ADMIN: "Admin", TeamRole.EDITOR: "Editor"}


class AuditAction(StrEnum):
    """What the audit log records: every change to what guests get or who may reach it, and to the team."""

    ASSISTANT_CREATED = "assistant.created"
    ASSISTANT_DELETED = "assistant.deleted"
    PUBLISHED = "assistant.published"
    VERSION_RESTORED = "assistant.version_restored"
    STATUS = "assistant.status"
    SHARE_MODE = "assistant.share_mode"
    ACCESS_CODE_SET = "assistant.access_code_set"
    ACCESS_CODE_REMOVED = "assistant.access_code_removed"
    PUBLIC_LINK_EXPIRY = "assistant.public_link_expiry"
    PUBLIC_LINK_ROTATED = "assistant.public_link_rotated"
    WIDGET_ID_ROTATED = "assistant.widget_id_rotated"
    ALLOWED_WEBSITES = "assistant.allowed_websites"
    QUOTAS = "assistant.quotas"
    RETENTION = "assistant.retention"
    DRAFT_EDITED = "assistant.draft_edited"
    LINK_CREATED = "link.created"
    LINK_RENAMED = "link.renamed"
    LINK_CAP = "link.cap"
    LINK_PAUSED = "link.paused"
    LINK_RESUMED = "link.resumed"
    LINK_EXPIRY = "link.expiry"
    LINK_RESET = "link.reset"
    LINK_DELETED = "link.deleted"
    LINK_REISSUED = "link.reissued"
    MEMBER_INVITED = "member.invited"
    INVITATION_REVOKED = "member.invitation_revoked"
    MEMBER_JOINED = "member.joined"
    MEMBER_ROLE = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    MEMBER_LEFT = "member.left"
    OWNERSHIP_TRANSFERRED = "team.ownership_transferred"
    TEAM_RENAMED = "team.renamed"


AUDIT_LABELS: dict[AuditAction, str] = {
    AuditAction.ASSISTANT_CREATED: "Assistant created",
    AuditAction.ASSISTANT_DELETED: "Assistant deleted",
    AuditAction.PUBLISHED: "Published",
    AuditAction.VERSION_RESTORED: "Version restored to the draft",
    AuditAction.STATUS: "Status",
    AuditAction.SHARE_MODE: "Share mode",
    AuditAction.ACCESS_CODE_SET: "Access code set",
    AuditAction.ACCESS_CODE_REMOVED: "Access code removed",
    AuditAction.PUBLIC_LINK_EXPIRY: "Public link end date",
    AuditAction.PUBLIC_LINK_ROTATED: "Public link rotated",
    AuditAction.WIDGET_ID_ROTATED: "Widget id rotated",
    AuditAction.ALLOWED_WEBSITES: "Allowed websites",
    AuditAction.QUOTAS: "Quotas",
    AuditAction.RETENTION: "Retention",
    AuditAction.DRAFT_EDITED: "Draft edited",
    AuditAction.LINK_CREATED: "Link created",
    AuditAction.LINK_RENAMED: "Link renamed",
    AuditAction.LINK_CAP: "Link cap changed",
    AuditAction.LINK_PAUSED: "Link paused",
    AuditAction.LINK_RESUMED: "Link resumed",
    AuditAction.LINK_EXPIRY: "Link end date",
    AuditAction.LINK_RESET: "Link count reset",
    AuditAction.LINK_DELETED: "Link deleted",
    AuditAction.LINK_REISSUED: "Link reissued",
    AuditAction.MEMBER_INVITED: "Member invited",
    AuditAction.INVITATION_REVOKED: "Invitation revoked",
    AuditAction.MEMBER_JOINED: "Member joined",
    AuditAction.MEMBER_ROLE: "Role changed",
    AuditAction.MEMBER_REMOVED: "Member removed",
    AuditAction.MEMBER_LEFT: "Member left",
    AuditAction.OWNERSHIP_TRANSFERRED: "Ownership transferred",
    AuditAction.TEAM_RENAMED: "Team renamed",
}


def sql_in(members: Iterable[StrEnum]) -> str:
    """The values of an enum (or some of its members) as an SQL list, for CHECK constraints:
    `('live', 'offline')`."""
    return "(" + ", ".join(f"'{member.value}'" for member in members) + ")"
