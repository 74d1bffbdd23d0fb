"""Every setting is documented, and the schema the models describe is the one the migrations build."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portico.config import Settings
from portico.models import Base

# The objects migrations/env.py leaves out of autogenerate (full-text tables and indexes, outside the
# models' metadata); written out here, since importing env.py would run the migrations.
FULL_TEXT_OBJECTS = ("messages_fts", "ix_messages_content_fts", "session_search", "ix_session_search")


def include_object(obj, name, type_, reflected, compare_to):  # the same filter as migrations/env.py
    return not (name or "").startswith(FULL_TEXT_OBJECTS)


DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented():
    documented = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`PORTICO_{name.upper()}`" in documented, f"PORTICO_{name.upper()} is not in docs/configuration.md"


async def test_migrations_build_exactly_what_the_models_describe(app):
    async with app.state.engine.connect() as conn:
        differences = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True, "include_object": include_object}),
                Base.metadata,
            )
        )
    assert differences == []
