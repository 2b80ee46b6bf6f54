"""pgvector: appearance descriptors and embeddings as pgvector columns with HNSW indexes (PostgreSQL)

On PostgreSQL, ``tracks.appearance`` and ``track_embeddings.vector`` become pgvector
``vector`` columns (any dimension) and every (kind, dimension) already stored gets its
partial HNSW index (see camsight.store.vectors for why one column and partial indexes).
SQLite is left exactly as it was: BLOBs, compared by a full scan in numpy.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import numpy as np
import sqlalchemy as sa
from alembic import op

from camsight.store.vectors import appearance_column, create_index, embedding_column

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: Rows converted per round trip when an existing PostgreSQL store is upgraded.
_BATCH = 5000
_COLUMNS = (("tracks", "id", "appearance"), ("track_embeddings", "track_id, model", "vector"))


def _text(blob: bytes) -> str:
    return str(np.frombuffer(blob, "<f4").tolist()).replace(" ", "")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for table, key, column in _COLUMNS:
        # bytea cannot be cast to vector in SQL: copy through Python into a new column, then swap.
        op.execute(f'ALTER TABLE {table} ADD COLUMN "{column}_v" vector')
        keys = [k.strip() for k in key.split(",")]
        where = " AND ".join(f"{k} = :{k}" for k in keys)
        update = sa.text(f'UPDATE {table} SET "{column}_v" = CAST(:v AS vector) WHERE {where}')
        rows = bind.execute(sa.text(f'SELECT {key}, "{column}" FROM {table} WHERE "{column}" IS NOT NULL'))
        while batch := rows.fetchmany(_BATCH):
            values = [{**{k: r[i] for i, k in enumerate(keys)}, "v": _text(bytes(r[-1]))} for r in batch]
            bind.execute(update, values)
        op.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
        op.execute(f'ALTER TABLE {table} RENAME COLUMN "{column}_v" TO "{column}"')
    op.execute('ALTER TABLE track_embeddings ALTER COLUMN "vector" SET NOT NULL')
    for (dim,) in bind.execute(
        sa.text("SELECT DISTINCT vector_dims(appearance) FROM tracks WHERE appearance IS NOT NULL")
    ):
        create_index(bind, appearance_column(), int(dim))
    for model, dim in bind.execute(
        sa.text("SELECT DISTINCT model, vector_dims(vector) FROM track_embeddings")
    ):
        create_index(bind, embedding_column(model), int(dim))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, key, column in _COLUMNS:
        op.execute(f'ALTER TABLE {table} ADD COLUMN "{column}_b" bytea')
        keys = [k.strip() for k in key.split(",")]
        where = " AND ".join(f"{k} = :{k}" for k in keys)
        update = sa.text(f'UPDATE {table} SET "{column}_b" = :v WHERE {where}')
        rows = bind.execute(
            sa.text(f'SELECT {key}, "{column}"::text FROM {table} WHERE "{column}" IS NOT NULL')
        )
        while batch := rows.fetchmany(_BATCH):
            values = [
                {
                    **{k: r[i] for i, k in enumerate(keys)},
                    "v": np.fromstring(r[-1][1:-1], "<f4", sep=",").tobytes(),
                }
                for r in batch
            ]
            bind.execute(update, values)
        op.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')  # drops its HNSW indexes too
        op.execute(f'ALTER TABLE {table} RENAME COLUMN "{column}_b" TO "{column}"')
    op.execute('ALTER TABLE track_embeddings ALTER COLUMN "vector" SET NOT NULL')
