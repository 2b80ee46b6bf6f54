"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from camsight.store.db import open_store
from camsight.store.models import Base


def test_migrations_match_models(tmp_path):
    store = open_store(tmp_path / "data")
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert "alembic_version" in inspect(conn).get_table_names()
    store.close()


def test_reopening_is_idempotent(tmp_path):
    open_store(tmp_path / "data").close()
    store = open_store(tmp_path / "data")
    with store.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == "0006"
    store.close()
