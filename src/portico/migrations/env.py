from __future__ import annotations

from alembic import context

from portico.models import Base

# Portico always hands Alembic an open connection (see migrations/run.py), so there is no
# offline mode and no URL here.
# Full-text search objects made by migrations 0004 and 0013 by hand, outside the models' metadata.
FULL_TEXT_OBJECTS = ("messages_fts", "ix_messages_content_fts", "session_search", "ix_session_search")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (name or "").startswith(FULL_TEXT_OBJECTS)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
