from __future__ import annotations

from alembic import context

from portico.models import Base

# Portico always hands Alembic an open connection (see migrations/run.py), so there is no
# offline mode and no URL here.
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
