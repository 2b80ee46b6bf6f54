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
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from camsight.config.store import StoreConfig, database_url, normalise_url, redact_url
from camsight.errors import StoreError
from camsight.paths import DATA_ENV, default_data_dir

__all__ = ["DATA_ENV", "Store", "default_data_dir", "migrate", "open_store", "url_for"]

MIGRATIONS = Path(__file__).with_name("migrations")
#: The PostgreSQL advisory lock that serialises migrations (any constant unique to camsight).
MIGRATE_LOCK_KEY = 0x63616D5F6D696772  # "cam_migr"


@dataclass
class Store:
    """A data directory: ``camsight.db`` plus ``media/``."""

    root: Path
    engine: Engine
    sessions: sessionmaker[Session]
    #: The node this process is (``camsight run --node NAME``): sources it makes are marked as
    #: its own, so other nodes know where their media is. None: one box.
    node: str | None = None

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: where database-specific SQL (locks, queues) differs."""
        return self.engine.dialect.name

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
        if connection.dialect.name == "postgresql":
            # Nodes started together on an empty database would each create the tables (the second
            # failing on a duplicate type). Held to the commit: the next one then finds the newest
            # revision (read committed) and has nothing to do. SQLite serialises its writers itself.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
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
    if url is None:
        try:
            url = database_url()  # CAMSIGHT_DATABASE_URL, for processes handed no config
        except ValueError as exc:
            raise StoreError(str(exc)) from None
    if not create and url is None and not (root / "camsight.db").is_file():
        raise StoreError(f"no camsight data in {root} (nothing indexed there yet; check --data)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "media").mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot use data directory {root}: {exc.strerror}") from None
    if not os.access(root, os.W_OK):
        raise StoreError(f"cannot use data directory {root}: not writable")
    try:
        db_url = normalise_url(url) if url else f"sqlite:///{root / 'camsight.db'}"
        engine = _engine(db_url)
    except (ValueError, ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database {redact_url(url or '')}: {_sentence(exc)}") from None
    try:
        if migrate_schema:
            migrate(engine)
        elif engine.dialect.name != "sqlite":
            with engine.connect():
                pass  # an unreachable server is reported here, not at the first query
    except DBAPIError as exc:
        engine.dispose()
        where = f"in {root}" if engine.dialect.name == "sqlite" else f"at {redact_url(db_url)}"
        raise StoreError(f"cannot open database {where}: {_sentence(exc.orig)}") from None
    return Store(root=root, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def url_for(config: StoreConfig | None) -> str | None:
    """The database URL a config's ``store:`` section selects (``CAMSIGHT_DATABASE_URL`` wins); None:
    the SQLite file. StoreError (one sentence, no password) when it cannot be used."""
    try:
        return database_url(config)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a node outlives database restarts and failovers; a dead pooled connection is
    # replaced instead of failing the next request. connect_timeout: an unreachable server is
    # an error after seconds, not after the OS's TCP timeout.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _sentence(exc: BaseException | None) -> str:
    """The first line of an error, passwords redacted (psycopg's can span several lines)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return redact_url(first.removeprefix("connection failed: ")).rstrip(".")
