"""Alembic environment: run against the connection camsight hands over."""

from alembic import context

from camsight.store.models import Base
from camsight.store.vectors import include_object

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run by the alembic CLI
    raise SystemExit("run migrations through camsight (camsight.store.db.open_store)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    include_object=include_object,  # pgvector's per-model HNSW indexes are not in the models
)
with context.begin_transaction():
    context.run_migrations()
