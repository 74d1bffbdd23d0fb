"""All tables, in one place, so Alembic and the services see the same metadata."""

from portico.models.assistant import Assistant, AssistantVersion
from portico.models.base import Base, utcnow
from portico.models.document import Document
from portico.models.link import PrivateLink, RetiredLinkKey
from portico.models.message import Message
from portico.models.owner import ApiToken, Owner, OwnerSession, SignInFailure
from portico.models.session import ChatSession
from portico.models.team import AuditEvent, Invitation, Membership, Team
from portico.models.usage import DailyUsage, RefusalHourly, UsageHourly, UsageUserHourly

__all__ = [
    "ApiToken",
    "Assistant",
    "AssistantVersion",
    "AuditEvent",
    "Base",
    "ChatSession",
    "DailyUsage",
    "Document",
    "Invitation",
    "Membership",
    "Message",
    "Owner",
    "OwnerSession",
    "PrivateLink",
    "RefusalHourly",
    "RetiredLinkKey",
    "SignInFailure",
    "Team",
    "UsageHourly",
    "UsageUserHourly",
    "utcnow",
]
