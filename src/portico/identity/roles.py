"""Who may do what: one table of actions and the least role each needs, and one check.

Services call `require(member, action)` before they change anything; routes and templates never
decide on roles. Templates only ask `allows` to grey out what the service would refuse anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from portico.errors import PorticoError
from portico.vocabulary import TEAM_ROLE_LABELS, TEAM_ROLE_RANK, TeamRole


class Action(StrEnum):
    READ = "read"
    EDIT = "edit"
    SHARE = "share"
    PUBLISH = "publish"
    MANAGE_MEMBERS = "manage_members"
    OWN_TEAM = "own_team"


# The table. READ: assistants, Logs, Metrics, exports. EDIT: create assistants, edit
# drafts, preview. PUBLISH: publish, restore a version. SHARE: Live/Offline, share mode, access
# code, rotations, private links, allowed websites, quotas, retention, delete an assistant.
MINIMUM_ROLE: dict[Action, TeamRole] = {
    Action.READ: TeamRole.EDITOR,
    Action.EDIT: TeamRole.EDITOR,
    Action.PUBLISH: TeamRole.ADMIN,
    Action.SHARE: TeamRole.ADMIN,
    Action.MANAGE_MEMBERS: TeamRole.ADMIN,
    Action.OWN_TEAM: TeamRole.OWNER,
}

# What the refusal names: "Publishing needs the Admin or Owner role."
DOING: dict[Action, str] = {
    Action.READ: "Reading this team's assistants",
    Action.EDIT: "Editing drafts",
    Action.PUBLISH: "Publishing or restoring a version",
    Action.SHARE: "Changing who can reach an assistant (status, sharing, links, limits, deleting)",
    Action.MANAGE_MEMBERS: "Inviting, changing roles and removing members",
    Action.OWN_TEAM: "Transferring ownership, renaming or deleting the team",
}


@dataclass(frozen=True)
class Member:
    """Someone acting within a team, with their role as it is now. `account_id` None is the operator (CLI)."""

    account_id: int | None
    email: str | None
    team_id: int
    team_name: str
    role: TeamRole

    @classmethod
    def operator(cls, team_id: int, team_name: str = "") -> Member:
        return cls(account_id=None, email=None, team_id=team_id, team_name=team_name, role=TeamRole.OWNER)

    @property
    def role_label(self) -> str:
        return TEAM_ROLE_LABELS[self.role]


class ForbiddenRole(PorticoError):
    status = 403
    code = "forbidden_role"
    message = "Your role in this team does not allow this."


def allows(member: Member, action: Action) -> bool:
    return TEAM_ROLE_RANK[member.role] >= TEAM_ROLE_RANK[MINIMUM_ROLE[action]]


def needed(action: Action) -> str:
    """The sentence naming the role an action needs, shown when it is refused or greyed out."""
    minimum = MINIMUM_ROLE[action]
    if minimum == TeamRole.OWNER:
        roles = "the Owner role"
    elif minimum == TeamRole.ADMIN:
        roles = "the Admin or Owner role"
    else:
        roles = "any role in the team"
    return f"{DOING[action]} needs {roles}."


def require(member: Member, action: Action) -> None:
    if not allows(member, action):
        raise ForbiddenRole(f"{needed(action)} You are {_article(member.role_label)} {member.role_label} here.")


def _article(word: str) -> str:
    return "an" if word[0] in "AEIOU" else "a"
