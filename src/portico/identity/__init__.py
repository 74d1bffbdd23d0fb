"""Who is asking: accounts and passwords, members and roles, sign-in sessions, API tokens,
invitations, and the dependencies that put a `Member` on every owner request (docs/design.md,
"Identity"). Imports nothing from the domains above it (teams, assistants, access, chat, ...)."""
