"""The demo that `make run` seeds on first run: an owner, an API token and a live assistant."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.assistants import service as assistants
from portico.assistants.schemas import AssistantCreate
from portico.config import Settings
from portico.identity import accounts, members, tokens
from portico.kit.crypto import Vault
from portico.models import Assistant, Membership, Owner
from portico.vocabulary import Status, TeamRole

DEMO_EMAIL = "demo@portico.localhost"
KNOWLEDGE = (Path(__file__).parent / "knowledge.md").read_text(encoding="utf-8")


def _credentials_file(config: Settings) -> Path:
    return config.data_dir / "demo-credentials.txt"


async def seed_demo(db: AsyncSession, config: Settings) -> str:
    """Seed once (only on an empty database); say what to open every time."""
    path = _credentials_file(config)
    if await db.scalar(select(func.count()).select_from(Owner)) == 0:
        password = secrets.token_urlsafe(12)
        owner = await accounts.create_owner(db, email=DEMO_EMAIL, password=password)
        member = await members.first_team(db, account_id=owner.id)
        assert member is not None
        _token, plain = await tokens.create_api_token(db, member=member, name="demo")
        assistant = await assistants.create_assistant(
            db,
            member=member,
            data=AssistantCreate(
                name="Portico Guide",
                description="Ask me anything about Portico: sharing, links, sessions, Logs.",
                greeting="Hello! I answer questions about Portico. What would you like to know?",
                instructions="Answer questions about Portico from the FAQ.",
                knowledge=KNOWLEDGE,
                starters=[
                    "Can I put the assistant on my website?",
                    "What happens when I delete a private link?",
                    "What is your phone number?",
                ],
            ),
            vault=Vault(config.resolved_secret_key()),
        )
        await assistants.publish(db, member=member, assistant=assistant)
        await assistants.set_status(db, member=member, assistant=assistant, status=Status.LIVE)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Tokens are stored only as digests; this file (like the secret key beside it) is the
        # one place the demo's token can be read again on the next `make run`.
        path.write_text(f"email={DEMO_EMAIL}\npassword={password}\napi_token={plain}\n")
        path.chmod(0o600)
    demo = await db.scalar(
        select(Assistant)
        .join(Membership, (Membership.team_id == Assistant.team_id) & (Membership.role == TeamRole.OWNER))
        .join(Owner, Owner.id == Membership.owner_id)
        .where(Owner.email == DEMO_EMAIL, Assistant.deleted_at.is_(None))
        .order_by(Assistant.id)
        .limit(1)
    )
    lines = [f"Portico is at {config.base_url}"]
    if demo is not None:
        lines.append(f"Chat with the demo assistant: {config.base_url}/c/{demo.public_id}")
    lines.append(f"Dashboard (sign in with the demo owner below): {config.base_url}/dashboard")
    lines.append(f"API documentation: {config.base_url}/docs")
    if path.exists():
        values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        lines.append(f"Demo owner: {values.get('email')} / password {values.get('password')}")
        lines.append(f"Demo owner's API token: {values.get('api_token')}")
    return "\n".join(lines)
