"""Opening the data directory: database engine, migrations and media folder."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from camsight.errors import StoreError
from camsight.paths import DATA_ENV, default_data_dir

__all__ = ["DATA_ENV", "Store", "default_data_dir", "migrate", "open_store"]

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass
class Store:
    """A data directory: ``camsight.db`` plus ``media/``."""

    root: Path
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def media(self) -> Path:
        return self.root / "media"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (search, API) work while an indexer writes; NORMAL
    # sync is durable across process crashes, which is what kill -9 tests.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(
    root: Path | None = None, url: str | None = None, *, create: bool = True, migrate_schema: bool = True
) -> Store:
    """Open (creating and migrating if needed) the store in ``root``.

    ``url`` selects another database (e.g. PostgreSQL); media stays in ``root``.
    With ``create=False`` a data directory without a database is an error
    (commands that only read must not invent an empty store from a typo).
    ``migrate_schema=False`` leaves the schema as it is (a backup must not upgrade what it copies).

    >>> store = open_store(Path("/tmp/camsight-doc"))  # doctest: +SKIP
    """
    root = Path(root) if root is not None else default_data_dir()
    if not create and url is None and not (root / "camsight.db").is_file():
        raise StoreError(f"no camsight data in {root} (nothing indexed there yet; check --data)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "media").mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot use data directory {root}: {exc.strerror}") from None
    if not os.access(root, os.W_OK):
        raise StoreError(f"cannot use data directory {root}: not writable")
    db_url = url or f"sqlite:///{root / 'camsight.db'}"
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate_schema:
            migrate(engine)
    except DatabaseError as exc:
        engine.dispose()
        raise StoreError(f"cannot open database in {root}: {exc.orig}") from None
    return Store(root=root, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
