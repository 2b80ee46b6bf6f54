"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import sqlite3

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from camsight.store.db import MIGRATIONS, open_store
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
    assert version == "0010"  # the newest migration (pgvector columns; a no-op on SQLite)
    store.close()


def test_a_store_of_the_previous_version_upgrades_and_keeps_its_jobs(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    engine = create_engine(f"sqlite:///{root / 'camsight.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.exec_driver_sql(
            "INSERT INTO jobs (kind, camera, owns_file, state, progress, frames_done, tracks, events, "
            "created_by, created_at) VALUES ('index', 'lobby', 1, 'queued', 0, 0, '{}', '{}', 'olga', "
            "'2026-11-20 18:00:00')"
        )
    engine.dispose()
    open_store(root).close()
    con = sqlite3.connect(root / "camsight.db")
    try:
        assert con.execute("SELECT camera, state, recorded_at FROM jobs").fetchall() == [
            ("lobby", "queued", None)
        ]
    finally:
        con.close()
