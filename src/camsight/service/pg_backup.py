"""The database part of ``camsight backup`` and ``restore`` when the store is PostgreSQL.

A backup of a PostgreSQL store holds, where a SQLite store's holds ``camsight.db``,
``data/camsight.pgdump``: a ``pg_dump --format=custom`` archive. The dump, the row
counts and the schema revision in the manifest all come from one snapshot: camsight
opens a repeatable-read transaction, exports its snapshot, counts in it and hands it
to ``pg_dump --snapshot``, so the nodes can go on writing meanwhile.

A restore runs ``pg_restore`` (in one transaction, stopping at the first error) into
the database the store URL names. One that already holds tables is refused unless
``force``; then its ``public`` schema is renamed to ``camsight_before_restore_<time>``
(kept, never dropped) and the restore goes into a new, empty ``public``. Anything that
fails after that (pg_restore, the row counts, the audit chain) puts the database back
as it was.

The tools: ``CAMSIGHT_PG_DUMP`` (``pg_restore`` is then the one beside it), else
``pg_dump`` and ``pg_restore`` on ``PATH``. A ``pg_dump`` older than the server cannot
dump it, and a ``pg_restore`` older than the ``pg_dump`` that made an archive cannot
read it: both are refused before anything is written. The password goes to them in
``PGPASSWORD`` in their environment, never on their command line.

>>> tool_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
15
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from camsight.config.store import redact_url
from camsight.service.backup import BackupError, Meter, PostgresInfo, Progress

if TYPE_CHECKING:
    import psycopg

#: The pg_dump to use (path); pg_restore is taken from the same folder.
PG_DUMP_ENV = "CAMSIGHT_PG_DUMP"
#: Where ``--force`` moves a database's earlier contents: this prefix and the time.
ASIDE_PREFIX = "camsight_before_restore_"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


# --------------------------------------------------------------------------- the tools


@dataclass(frozen=True)
class PgTool:
    """``pg_dump`` or ``pg_restore``: where it is and its version."""

    path: Path
    #: e.g. ``18.6``.
    version: str
    major: int


def tool_major(version: str) -> int:
    """The major version in a ``--version`` line (``pg_dump (PostgreSQL) 18.6``: 18); 0 if none."""
    match = _VERSION.search(version)
    return int(match.group(1)) if match else 0


def find_tool(name: Literal["pg_dump", "pg_restore"]) -> PgTool:
    """``name`` as ``CAMSIGHT_PG_DUMP`` or ``PATH`` gives it, with its version; BackupError saying
    what is missing when there is none."""
    given = os.environ.get(PG_DUMP_ENV, "").strip()
    if given:
        dump = Path(given).expanduser()
        path = dump if name == "pg_dump" else dump.with_name(name)
        if not (path.is_file() and os.access(path, os.X_OK)):
            beside = "" if name == "pg_dump" else f" (it is taken from beside {dump})"
            raise BackupError(f"{PG_DUMP_ENV} is set to {given}, but there is no {name} at {path}{beside}")
    else:
        found = shutil.which(name)
        if found is None:
            raise BackupError(
                f"{name} is not on PATH: install the PostgreSQL client tools (the server's version or "
                f"newer), or set {PG_DUMP_ENV} to the pg_dump to use (pg_restore is taken from beside it)"
            )
        path = Path(found)
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"cannot run {path}: {exc}") from None
    line = (proc.stdout or proc.stderr).strip().splitlines()
    if proc.returncode != 0 or not line or not tool_major(line[0]):
        raise BackupError(
            f"{path} does not look like {name}: `{name} --version` said {line[:1] or 'nothing'}"
        )
    match = _VERSION.search(line[0])
    assert match is not None  # tool_major found it
    return PgTool(path, ".".join(g for g in match.groups() if g), int(match.group(1)))


# --------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class Target:
    """A PostgreSQL database as the tools reach it: libpq URI without the password, and the password."""

    uri: str
    password: str | None
    shown: str

    @classmethod
    def of(cls, url: str) -> Target:
        from sqlalchemy.engine import URL, make_url

        parsed = make_url(url)
        # Built anew: URL.set(password=None) would keep the password.
        plain = URL.create(
            "postgresql",
            username=parsed.username,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
            query=parsed.query,
        )
        return cls(plain.render_as_string(hide_password=False), parsed.password, redact_url(url))

    @property
    def name(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.uri).database or ""

    def env(self) -> dict[str, str]:
        """The environment of a pg_dump or pg_restore child: the password only here, never in argv."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        return env

    def connect(self) -> psycopg.Connection:
        import psycopg

        try:
            return psycopg.connect(self.uri, password=self.password, connect_timeout=10)
        except psycopg.Error as exc:
            raise BackupError(
                f"cannot reach the PostgreSQL store at {self.shown}: {_first_line(exc)}"
            ) from None


def _first_line(exc: BaseException | str) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return redact_url((lines[0] if lines else type(exc).__name__).removeprefix("connection failed: "))


def _tool_error(stderr: str) -> str:
    """The line of a pg_dump/pg_restore error output that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line] or lines
    return redact_url(errors[0]) if errors else "no message"


def tables(conn: psycopg.Connection) -> list[str]:
    """The tables of the ``public`` schema (camsight's), in name order."""
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [r[0] for r in rows]


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows per table of the ``public`` schema, in name order."""
    from psycopg import sql

    counts: dict[str, int] = {}
    for name in tables(conn):
        query = sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(name))
        counts[name] = conn.execute(query).fetchone()[0]  # type: ignore[index]
    return counts


def schema_revision(conn: psycopg.Connection) -> str | None:
    """The Alembic revision of the ``public`` schema (None: no camsight schema there)."""
    if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is None:  # type: ignore[index]
        return None
    row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    return row[0] if row else None


def server_version(conn: psycopg.Connection) -> tuple[int, str]:
    """The server's major version and its full version string."""
    number = conn.info.server_version  # e.g. 180001
    return number // 10000, f"{number // 10000}.{number % 10000}"


# --------------------------------------------------------------------------- backing up


@dataclass(frozen=True)
class Dumped:
    """A database dumped into a backup: its revision, rows per table and where it came from."""

    revision: str
    counts: dict[str, int]
    info: PostgresInfo


def dump_database(url: str, dst: Path, report: Progress | None) -> Dumped:
    """``pg_dump --format=custom`` of the store at ``url`` into the new file ``dst`` (mode 0600).

    The revision and row counts are read in the very snapshot the dump is taken in.
    """
    import psycopg

    target = Target.of(url)
    tool = find_tool("pg_dump")
    with target.connect() as conn:
        major, version = server_version(conn)
        if tool.major < major:
            raise BackupError(
                f"{tool.path} is pg_dump {tool.version}, older than the server (PostgreSQL {version}), "
                f"which it cannot dump: put pg_dump {major} or newer on PATH, or set {PG_DUMP_ENV} to it"
            )
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
            revision = schema_revision(conn)
            if revision is None:
                raise BackupError(
                    f"the database {target.shown} is not a camsight store (it has no schema revision)"
                )
            counts = table_counts(conn)
        except psycopg.Error as exc:
            raise BackupError(
                f"cannot read the PostgreSQL store at {target.shown}: {_first_line(exc)}"
            ) from None
        # The snapshot stays exported while this transaction is open, i.e. until pg_dump is done.
        cmd = [str(tool.path), "--format=custom", f"--snapshot={snapshot}", f"--dbname={target.uri}"]
        try:
            # The archive goes to a file made private before a byte is in it (it holds password hashes).
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                proc = subprocess.run(
                    cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=target.env(), check=False
                )
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise BackupError(f"cannot run {tool.path} into the backup: {exc.strerror or exc}") from None
        conn.rollback()
    if proc.returncode != 0:
        raise BackupError(f"pg_dump could not dump {target.shown}: {_tool_error(proc.stderr)}")
    size = dst.stat().st_size  # pg_dump says nothing as it goes: the bar shows the archive made
    Meter("database", size, report).add(size)
    return Dumped(
        revision,
        counts,
        PostgresInfo(database=target.shown, server_version=version, pg_dump_version=tool.version),
    )


# --------------------------------------------------------------------------- restoring


@dataclass
class RestoreTarget:
    """A database checked to take a restore (see :func:`check_target`)."""

    target: Target
    tool: PgTool
    #: Tables the database holds now: moved aside by :func:`restore_database` (``force`` said so).
    busy: bool
    #: The schema they went to, once moved.
    aside: str | None = None
    #: Whether the database differs from what it was (what :func:`undo_restore` puts right).
    changed: bool = False


def check_target(url: str, info: PostgresInfo, force: bool) -> RestoreTarget:
    """Refuse (one sentence) a database that cannot take the restore; nothing is written here."""
    target = Target.of(url)
    tool = find_tool("pg_restore")
    made_by = tool_major(f"(PostgreSQL) {info.pg_dump_version}")
    if tool.major < made_by:
        raise BackupError(
            f"{tool.path} is pg_restore {tool.version}, older than the pg_dump {info.pg_dump_version} that "
            f"made the backup, whose archive it cannot read: use pg_restore {made_by} or newer (on PATH, "
            f"or beside {PG_DUMP_ENV})"
        )
    import psycopg

    with target.connect() as conn:
        try:
            present = tables(conn)
            revision = schema_revision(conn) if present else None
        except psycopg.Error as exc:
            raise BackupError(f"cannot read the database {target.shown}: {_first_line(exc)}") from None
        if present and not force:
            what = (
                f"camsight data (schema revision {revision}, {len(present)} tables)"
                if revision
                else f"{len(present)} tables that are not camsight's"
            )
            raise BackupError(
                f"the database {target.shown} already holds {what}; restore into an empty database, or add "
                f"--force to move its contents aside (to a schema {ASIDE_PREFIX}TIME, kept in that database)"
            )
    return RestoreTarget(target, tool, busy=bool(present))


def _execute(target: Target, statements: list[Any]) -> None:
    """Run ``statements`` in one transaction (all or nothing)."""
    import psycopg

    with target.connect() as conn:
        try:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise BackupError(f"cannot prepare the database {target.shown}: {_first_line(exc)}") from None


def _extensions_in(target: Target, schema: str) -> list[str]:
    import psycopg

    with target.connect() as conn:
        try:
            rows = conn.execute(
                "SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE n.nspname = %s ORDER BY 1",
                (schema,),
            )
            return [r[0] for r in rows]
        except psycopg.Error as exc:
            raise BackupError(f"cannot read the database {target.shown}: {_first_line(exc)}") from None


def restore_database(plan: RestoreTarget, archive: Path) -> None:
    """``pg_restore`` the archive into the database; on failure it is as it was (BackupError)."""
    from psycopg import sql

    if plan.busy:
        plan.aside = ASIDE_PREFIX + datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
        # The old contents keep their extensions (pgvector): moved back into the new public schema,
        # the old tables' columns still use them, and the restore finds them where the dump expects.
        moves = [
            sql.SQL("ALTER EXTENSION {} SET SCHEMA public").format(sql.Identifier(e))
            for e in _extensions_in(plan.target, "public")
        ]
        _execute(
            plan.target,
            [
                sql.SQL("ALTER SCHEMA public RENAME TO {}").format(sql.Identifier(plan.aside)),
                sql.SQL("CREATE SCHEMA public"),
                *moves,
            ],
        )
        plan.changed = True
    cmd = [
        str(plan.tool.path),
        "--no-owner",  # the restored objects are the restoring role's, whoever owned them before
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",  # all of it or nothing
        f"--dbname={plan.target.uri}",
        str(archive),
    ]
    # Interrupted (Ctrl-C reaches pg_restore too), or failed: its one transaction leaves nothing.
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=plan.target.env(), check=False)
    except OSError as exc:
        undo_restore(plan)
        raise BackupError(
            f"cannot run {plan.tool.path}: {exc.strerror or exc}; nothing was restored"
        ) from None
    if proc.returncode != 0:
        undo_restore(plan)
        raise BackupError(f"pg_restore failed: {_tool_error(proc.stderr)}; nothing was restored")
    plan.changed = True


def undo_restore(plan: RestoreTarget) -> None:
    """Put the database back as it was before :func:`restore_database` (best effort, one transaction);
    nothing when it is unchanged (so calling it twice is safe)."""
    from psycopg import sql

    if not plan.changed:
        return
    public = sql.Identifier("public")
    if plan.aside is None:
        # It held nothing: drop what the restore made (its extensions too), keep an empty public schema.
        statements = [
            sql.SQL("DROP SCHEMA IF EXISTS public CASCADE"),
            sql.SQL("CREATE SCHEMA public"),
            sql.SQL("GRANT USAGE ON SCHEMA public TO PUBLIC"),
        ]
    else:
        aside = sql.Identifier(plan.aside)
        # Extensions back with the old tables first, so dropping the restored ones does not take them.
        statements = [
            *(
                sql.SQL("ALTER EXTENSION {} SET SCHEMA {}").format(sql.Identifier(e), aside)
                for e in _extensions_in(plan.target, "public")
            ),
            sql.SQL("DROP SCHEMA public CASCADE"),
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(aside, public),
        ]
    try:
        _execute(plan.target, statements)
    except BackupError:
        return  # the error that led here is the one to report; the database stays as it is
    plan.aside, plan.changed = None, False


def restored_counts(target: Target) -> dict[str, int]:
    """Rows per table of the restored database."""
    import psycopg

    with target.connect() as conn:
        try:
            return table_counts(conn)
        except psycopg.Error as exc:
            raise BackupError(f"cannot read the restored database: {_first_line(exc)}") from None
