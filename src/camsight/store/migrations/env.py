"""Alembic environment: run against the connection camsight hands over."""

from alembic import context

from camsight.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run by the alembic CLI
    raise SystemExit("run migrations through camsight (camsight.store.db.open_store)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
)
with context.begin_transaction():
    context.run_migrations()
