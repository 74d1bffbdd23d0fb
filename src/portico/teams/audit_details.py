"""An audit entry's details as a person reads them: "Name: John Smith (was Smith, John)", "Role:
Editor", "Ends: 2026-12-09 14:30 UTC". The stored detail stays as written (the API returns it as is);
only the dashboard's line is made here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from portico.vocabulary import TEAM_ROLE_LABELS, AuditAction, TeamRole


def _moment(value: Any) -> str:
    # The dashboard's format for times (web/pages.py `when`): UTC, to the minute.
    if value in (None, "never"):
        return "never"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value)


def _role(value: Any) -> str:
    return TEAM_ROLE_LABELS[TeamRole(value)] if value in {role.value for role in TeamRole} else str(value)


def _cap(value: Any) -> str:
    return "unlimited" if value == 0 else f"{value} session{'s' if value != 1 else ''}"


def _limit(value: Any) -> str:
    return "unlimited" if value == 0 else str(value)


def _days(value: Any) -> str:
    return "forever" if value == 0 else f"{value} day{'s' if value != 1 else ''}"


# Each stored key: its label and how its value reads. Keys not listed read as "Key: value".
FIELDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "name": ("Name", str),
    "link": ("Link", str),
    "version": ("Version", str),
    "status": ("Status", lambda v: str(v).capitalize()),
    "mode": ("Share mode", lambda v: str(v).capitalize()),
    "role": ("Role", _role),
    "email": ("Member", str),
    "invitation": ("Invitation", lambda v: f"#{v}"),
    "cap": ("Cap", _cap),
    "ends": ("Ends", _moment),
    "used": ("Sessions used before the reset", str),
    "days": ("Kept for", _days),
    "store_transcripts": ("Store transcripts", lambda v: "yes" if v else "no"),
    "websites": ("Allowed websites", str),
    "fields": ("Changed", str),
    "messages_per_session": ("Messages per session", _limit),
    "sessions_per_day": ("Sessions per day", _limit),
    "tokens_per_day": ("Tokens per day", _limit),
}
# A rename stores the name before it under its own key: shown as "(was ...)" after the new name.
RENAMES = {AuditAction.LINK_RENAMED: "link", AuditAction.TEAM_RENAMED: "old"}
LABELS = {AuditAction.OWNERSHIP_TRANSFERRED: {"email": "New owner"}}


def describe(action: AuditAction, detail: dict[str, Any]) -> str:
    values = {key: value for key, value in detail.items() if value not in (None, "")}
    if action in RENAMES:
        was = values.pop(RENAMES[action], None)
        if "name" in values and was is not None:
            values["name"] = f"{values['name']} (was {was})"
    parts = []
    for key, value in values.items():
        label, show = FIELDS.get(key, (key.replace("_", " ").capitalize(), str))
        parts.append(f"{LABELS.get(action, {}).get(key, label)}: {show(value)}")
    return "; ".join(parts)
