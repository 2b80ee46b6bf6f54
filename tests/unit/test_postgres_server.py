"""The test PostgreSQL server: real, on 127.0.0.1, with pgvector available."""

from __future__ import annotations

import sqlalchemy as sa


def test_fresh_database_on_loopback_has_pgvector(postgres_url: str) -> None:
    assert "@127.0.0.1:" in postgres_url
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
            tables = sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert conn.execute(tables).scalar() == 0
            assert conn.execute(sa.text("SELECT '[1,2]'::vector <-> '[1,3]'::vector")).scalar() == 1.0
    finally:
        engine.dispose()
