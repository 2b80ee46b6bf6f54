"""``camsight backup``: a consistent copy of a data folder, taken while camsight runs.

A backup is a folder (private to its owner: it holds password hashes and keys)::

    manifest.json        what is in it, and the size and sha256 of every other file
    data/camsight.db     the database, copied with SQLite's online backup API
    data/camsight.pgdump or, for a PostgreSQL store, a pg_dump archive (see :mod:`.pg_backup`)
    data/<file>          the data folder's own files: keys (e.g. the link-signing key)
    data/secrets/ ...    and data/keys/, when the data folder has them
    data/media/ ...      with media: thumbnails, event snapshots, camera pictures
    data/recordings/ ... with media: the recordings folder, wherever storage.recordings puts it
    data/uploads/ ...    with media: uploaded videos, wherever uploads.folder puts them
    config/<name>        the config file in force, when it lives outside the data folder

The database copy is one read transaction: rows committed after it began are
not in it, and a transaction being written (an indexer's batch of tracks, an
event with its alert) is either wholly in it or not at all, while the service
goes on writing (WAL). Media files are copied after the database, so a
thumbnail written meanwhile may be there without its row, never the other way
round, except for footage that retention deleted in between.

The backup is built in a hidden folder next to ``DEST`` and renamed to
``DEST`` only when complete, so ``DEST`` is either a whole backup or absent.
Left out, and named in the manifest: the search index cache (``index/``,
rebuilt on the next search), installed models (``models/``, fetched again by
``camsight models pull``), exported clip cache (``media/clips``) and any other
folder of the data folder.

>>> from pathlib import Path
>>> create_backup(Path("/backups/camsight-2026-12-07"), Path("/srv/camsight"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import camsight
from camsight.auth.audit import Action, Actor
from camsight.errors import CamsightError
from camsight.paths import recordings_dir, uploads_dir

FORMAT = "camsight-backup"
FORMAT_VERSION = 1
#: A backup of a PostgreSQL store: a camsight that reads only version 1 says it cannot, not "damaged".
FORMAT_VERSION_POSTGRES = 2
MANIFEST = "manifest.json"
DB_NAME = "camsight.db"
#: A PostgreSQL store's database in a backup: a ``pg_dump --format=custom`` archive.
DUMP_NAME = "camsight.pgdump"
#: What SQLite keeps beside the database: never copied as files (the online backup reads them).
DB_FILES = frozenset({DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"})
#: Folders of the data folder that hold keys and secrets: always backed up, like its own files.
KEY_FOLDERS = ("secrets", "keys")
#: Folders left out on purpose, with why (said in the manifest and by the command).
REBUILT = {
    "index": "search index cache, rebuilt on the next search",
    "models": "installed models, fetched again by `camsight models pull`",
}
CLIP_CACHE = "clips"
#: Database pages copied per step: about 4 MiB, so the progress bar moves on big databases.
PAGES_PER_STEP = 1024
CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TOP_FOLDERS = ("data", "config")

#: ``progress(phase, done_bytes, total_bytes)``: called as a backup or restore goes on.
Progress = Callable[[str, int, int], None]


class BackupError(CamsightError):
    """A backup cannot be taken or restored; the message says why in one line."""

    exit_code = 1


# --------------------------------------------------------------------------- the manifest


class FileEntry(BaseModel):
    """One file of a backup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    """Where it is in the backup (POSIX, relative, under ``data/`` or ``config/``)."""
    size: Annotated[int, Field(ge=0)]
    sha256: str
    mode: Annotated[int, Field(ge=0, le=0o7777)]
    """Permission bits, restored as they were (a key stays 0600)."""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        check_relative(value)
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("not a sha256 in lower-case hex")
        return value


class PostgresInfo(BaseModel):
    """In a backup's manifest: where its database came from and what dumped it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str
    """The store's URL, password left out."""
    server_version: str
    """The server's PostgreSQL version, e.g. ``18.1``."""
    pg_dump_version: str
    """The ``pg_dump`` that made the archive (a ``pg_restore`` at least this new reads it)."""


class Manifest(BaseModel):
    """``manifest.json``: what a backup holds and how to check it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["camsight-backup"]
    format_version: Literal[1, 2]
    camsight_version: str
    created_at: datetime
    source_data_dir: str
    """The data folder it was taken from."""
    config_origin: str | None
    """The config file in force when it was taken (None: the built-in defaults)."""
    config_file: str | None
    """Where that config file is in the backup."""
    recordings_folder: str | None
    """With media: where recordings were (``storage.recordings``); restored to ``recordings/``."""
    uploads_folder: str | None
    schema_revision: str
    """The database's Alembic revision."""
    counts: dict[str, Annotated[int, Field(ge=0)]]
    """Rows per table in the copied database."""
    media: bool
    skipped: list[str]
    """What was left out, and why."""
    files: list[FileEntry]
    postgres: PostgresInfo | None = None
    """For a PostgreSQL store (format version 2): where the database came from, what dumped it."""

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[FileEntry]) -> list[FileEntry]:
        seen: set[str] = set()
        for f in files:
            if f.path in seen:
                raise ValueError(f"{f.path} is listed twice")
            seen.add(f.path)
        return files

    @model_validator(mode="after")
    def _database_listed(self) -> Manifest:
        if (self.format_version == FORMAT_VERSION_POSTGRES) != (self.postgres is not None):
            raise ValueError("postgres is given exactly in format version 2")
        if self.database_file not in {f.path for f in self.files}:
            raise ValueError(f"{self.database_file} is not listed")
        return self

    @property
    def database_file(self) -> str:
        """The database's file in the backup: the SQLite copy, or the pg_dump archive."""
        return f"data/{DUMP_NAME}" if self.postgres is not None else f"data/{DB_NAME}"

    def to_json(self) -> str:
        # A SQLite store's manifest stays as version 1 wrote it, so an older camsight reads it.
        data = self.model_dump(mode="json", exclude={"postgres"} if self.postgres is None else None)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_relative(path: str) -> PurePosixPath:
    """A manifest path as a safe relative path, or ValueError: nothing may point outside the backup.

    >>> check_relative("data/media/a.jpg").parts
    ('data', 'media', 'a.jpg')
    >>> check_relative("data/../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: 'data/../../etc/passwd' is not a plain relative path
    """
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
        or pure.parts[0] not in _TOP_FOLDERS
        or len(pure.parts) < 2
    ):
        raise ValueError(f"{path!r} is not a plain relative path")
    return pure


def read_manifest(src: Path) -> Manifest:
    """The manifest of the backup in ``src``; a missing or damaged one is a :class:`BackupError`."""
    if not src.exists():
        raise BackupError(f"{src}: no such backup")
    if not src.is_dir():
        raise BackupError(f"{src} is not a backup folder (a camsight backup is a folder)")
    path = src / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupError(f"{src} is not a camsight backup ({MANIFEST} is missing)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackupError(f"{path} is damaged: not JSON ({exc})") from None
    known = (FORMAT_VERSION, FORMAT_VERSION_POSTGRES)
    if isinstance(data, dict) and data.get("format") == FORMAT and data.get("format_version") not in known:
        raise BackupError(
            f"{path}: backup format version {data.get('format_version')!r} is not one this camsight "
            f"reads ({', '.join(map(str, known))}); restore it with the camsight that made it"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        raise BackupError(f"{path} is damaged: {where}: {first['msg']}") from None


# --------------------------------------------------------------------------- copying files


@dataclass
class Meter:
    """Bytes done out of a total, reported through a :data:`Progress` callback."""

    phase: str
    total: int
    report: Progress | None
    done: int = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.report is not None:
            self.report(self.phase, self.done, max(self.total, self.done))


def copy_hashed(src: Path, dst: Path, mode: int, meter: Meter) -> tuple[int, str]:
    """Copy ``src`` to a new file ``dst`` with permission bits ``mode``; its size and sha256.

    The hash is of the bytes written, so a file that grows while it is copied
    (a recording being written) is described as it was copied. Written through
    to disk before returning. Errors reading are ``OSError`` with ``filename``
    set to ``src``, errors writing to ``dst``.
    """
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as inp:
        # O_EXCL, and private until complete: a key is never readable by others, even for a moment.
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := _read(inp, src):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                meter.add(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    os.chmod(dst, mode)
    return size, digest.hexdigest()


def _read(inp, src: Path) -> bytes:  # noqa: ANN001 - a binary file
    try:
        return inp.read(CHUNK)
    except OSError as exc:
        exc.filename = exc.filename or str(src)
        raise


def hash_file(path: Path, meter: Meter) -> tuple[int, str]:
    """The size and sha256 of ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            meter.add(len(chunk))
    return size, digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new files, a rename) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_folder_beside(target: Path, purpose: str) -> Path:
    """A new private hidden folder next to ``target``, on the same file system (so a rename is atomic)."""
    tmp = target.with_name(f".{target.name}.{purpose}-{secrets.token_hex(4)}")
    tmp.mkdir(mode=0o700)
    return tmp


def os_reason(exc: OSError) -> str:
    """``No space left on device (/backups/x/data/camsight.db)``: an OSError in a sentence."""
    what = exc.strerror or str(exc)
    return f"{what} ({exc.filename})" if exc.filename else what


# --------------------------------------------------------------------------- the database


def table_counts(con: sqlite3.Connection) -> dict[str, int]:
    """Rows per table (SQLite's own tables left out), in name order."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    # Names come from the database's own catalogue; quoted for names that are SQL words.
    return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def schema_revision(con: sqlite3.Connection) -> str | None:
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def _copy_database(db: Path, dst: Path, report: Progress | None) -> tuple[str, dict[str, int]]:
    """Copy the live database into ``dst`` with the online backup API; its revision and row counts."""
    try:
        source = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database {db}: {exc}") from None
    target = None
    try:
        # One read transaction for the whole copy: a stable snapshot while writers go on (WAL), so
        # the copy neither restarts at each commit of the service nor mixes two moments.
        source.execute("BEGIN")
        page_size, pages = (source.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
        meter = Meter("database", page_size * pages, report)

        def step(_status: int, remaining: int, total: int) -> None:
            meter.total = total * page_size
            meter.add((total - remaining) * page_size - meter.done)

        target = sqlite3.connect(dst, isolation_level=None)
        source.backup(target, pages=PAGES_PER_STEP, progress=step)
        source.execute("COMMIT")
        # A backup is one self-contained file: no WAL beside it.
        target.execute("PRAGMA journal_mode=DELETE")
        check = target.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(
                f"the database copy does not pass SQLite's check ({check}); {db} may be damaged"
            )
        revision = schema_revision(target)
        if revision is None:
            raise BackupError(f"{db} is not a camsight database (it has no schema revision)")
        counts = table_counts(target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {db}: {exc}") from None
    finally:
        source.close()
        if target is not None:
            target.close()
    return revision, counts


# --------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    """What a backup copies: (file, path in the backup, size) and what it leaves out."""

    files: list[tuple[Path, str, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    config_file: str | None = None
    recordings: Path | None = None
    uploads: Path | None = None

    def add_tree(self, folder: Path, prefix: str, leave_out: tuple[Path, ...] = ()) -> None:
        """Every regular file under ``folder``; links are not followed (they may point anywhere)."""
        links = 0
        for path in _walk(folder, leave_out):
            if path.is_symlink():
                links += 1
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # deleted meanwhile (retention)
                continue
            self.files.append((path, f"{prefix}/{path.relative_to(folder).as_posix()}", size))
        if links:
            self.skipped.append(f"{prefix}: {links} symbolic link(s), not followed")


def _walk(folder: Path, leave_out: tuple[Path, ...]) -> Iterator[Path]:
    def fail(exc: OSError) -> None:
        raise exc

    for root, dirs, files in os.walk(folder, onerror=fail):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if here / d not in leave_out and not (here / d).is_symlink())
        for name in sorted(files):
            yield here / name


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _plan(data_dir: Path, config_path: Path | None, recordings: Path, uploads: Path, media: bool) -> _Plan:
    plan = _Plan()
    media_roots = {"media": data_dir / "media", "recordings": recordings, "uploads": uploads}
    in_data = config_path is not None and config_path.parent == data_dir
    for item in sorted(data_dir.iterdir()):
        name = item.name
        if name in DB_FILES or name.startswith(".") or name.endswith((".tmp", ".partial")):
            continue  # the database (copied on its own) and files being written
        if item.is_symlink():
            plan.skipped.append(f"data/{name}: a symbolic link, not followed")
        elif item.is_file():
            plan.files.append((item, f"data/{name}", item.stat().st_size))
        elif name in KEY_FOLDERS and item.is_dir():
            plan.add_tree(item, f"data/{name}")
        elif item in media_roots.values():
            continue  # copied with --media, below
        elif name in REBUILT:
            plan.skipped.append(f"data/{name}: {REBUILT[name]}")
        elif item.is_dir():
            plan.skipped.append(f"data/{name}: not a folder camsight keeps, left out")
    if config_path is not None and config_path.is_file():
        if in_data:
            plan.config_file = f"data/{config_path.name}"
        else:
            plan.config_file = f"config/{config_path.name}"
            plan.files.append((config_path, plan.config_file, config_path.stat().st_size))
    if not media:
        plan.skipped.append("media, recordings and uploads: left out (add --media to include them)")
    else:
        cache = data_dir / "media" / CLIP_CACHE
        done: list[Path] = []
        for name, folder in media_roots.items():
            if not folder.is_dir() or folder in done:
                continue
            # A recordings folder inside media/ (or the like) is copied once, as recordings/.
            inner = tuple(f for f in media_roots.values() if f != folder and _is_within(f, folder))
            plan.add_tree(folder, f"data/{name}", leave_out=(cache, *inner))
            done.append(folder)
        if cache.is_dir():
            plan.skipped.append(f"data/media/{CLIP_CACHE}: exported clips cache, made again on demand")
        plan.recordings, plan.uploads = recordings, uploads
    return plan


# --------------------------------------------------------------------------- taking a backup


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: where it is and its manifest."""

    dest: Path
    manifest: Manifest

    @property
    def files(self) -> int:
        return len(self.manifest.files)

    @property
    def bytes(self) -> int:
        return self.manifest.total_bytes


def server_url(url: str | None) -> str | None:
    """``url`` when it names a database server (PostgreSQL), None for the SQLite file."""
    return None if url is None or url.startswith("sqlite") else url


def check_dest(dest: Path, keep_out_of: list[Path]) -> None:
    """Refuse a ``DEST`` that exists, has no parent folder, or lies inside what is backed up."""
    if dest.exists() or dest.is_symlink():
        raise BackupError(f"{dest} already exists; name a new folder for the backup")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} does not exist; create it first or name another place")
    for folder in keep_out_of:
        if _is_within(dest.resolve(), folder.resolve()):
            raise BackupError(f"{dest} is inside {folder}, which is backed up; put the backup elsewhere")
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write in {dest.parent}: permission denied")


def create_backup(
    dest: Path,
    data_dir: Path,
    *,
    config_path: Path | None = None,
    recordings: Path | None = None,
    uploads: Path | None = None,
    media: bool = False,
    actor: Actor | None = None,
    progress: Progress | None = None,
    database_url: str | None = None,
) -> BackupResult:
    """Back up ``data_dir`` (and ``config_path``, the config in force) into the new folder ``dest``.

    ``recordings`` and ``uploads`` are those folders as the config places them
    (default: inside ``data_dir``); they are copied with ``media``. The backup
    is recorded in the audit log as ``backup.create`` by ``actor``.
    ``database_url``: the store's database when it is not the SQLite file; a
    PostgreSQL store is dumped with ``pg_dump`` (:mod:`camsight.service.pg_backup`),
    in one snapshot, before the files are copied.
    """
    server = server_url(database_url)
    dest = Path(os.path.abspath(Path(dest).expanduser()))
    data_dir = Path(os.path.abspath(Path(data_dir).expanduser()))
    recordings = recordings_dir(data_dir, recordings)
    uploads = uploads_dir(data_dir, uploads)
    db = data_dir / DB_NAME
    if server is not None:
        if not data_dir.is_dir():
            raise BackupError(f"no camsight data folder {data_dir} (check --data)")
    elif not db.is_file():
        raise BackupError(f"no camsight data in {data_dir} (no {DB_NAME}; check --data)")
    check_dest(dest, [data_dir, *((recordings, uploads) if media else ())])
    try:
        plan = _plan(data_dir, config_path, recordings, uploads, media)
    except OSError as exc:
        raise BackupError(f"cannot read {exc.filename or data_dir}: {exc.strerror or exc}") from None
    try:
        tmp = temp_folder_beside(dest, "partial")
    except OSError as exc:
        raise BackupError(f"cannot write in {dest.parent}: {os_reason(exc)}") from None
    try:
        manifest = _build(tmp, db, server, plan, data_dir, config_path, media, progress)
        if dest.exists():
            raise BackupError(f"{dest} appeared while the backup was taken; it is left as it was")
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        # Never a half-written backup: whatever went wrong (an error, Ctrl-C), the partial copy goes.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = BackupResult(dest, manifest)
    _audit_backup(data_dir, server, result, actor or Actor.cli())
    return result


def _build(
    tmp: Path,
    db: Path,
    server: str | None,
    plan: _Plan,
    data_dir: Path,
    config_path: Path | None,
    media: bool,
    progress: Progress | None,
) -> Manifest:
    (tmp / "data").mkdir(mode=0o700)
    postgres: PostgresInfo | None = None
    if server is None:
        db_copy = tmp / "data" / DB_NAME
        revision, counts = _copy_database(db, db_copy, progress)
        os.chmod(db_copy, 0o600)
    else:
        from camsight.service.pg_backup import dump_database

        db_copy = tmp / "data" / DUMP_NAME
        dumped = dump_database(server, db_copy, progress)
        revision, counts, postgres = dumped.revision, dumped.counts, dumped.info
    meter = Meter("files", sum(size for _, _, size in plan.files) + db_copy.stat().st_size, progress)
    # The database copy is hashed like any file (it is in the manifest like any file).
    try:
        db_size, db_hash = hash_file(db_copy, meter)
    except OSError as exc:
        raise BackupError(f"cannot read back the database copy: {os_reason(exc)}") from None
    entries = [FileEntry(path=f"data/{db_copy.name}", size=db_size, sha256=db_hash, mode=0o600)]
    vanished = 0
    for src, rel, _size in plan.files:
        dst = tmp / rel
        try:
            mode = stat.S_IMODE(src.stat().st_mode)
        except FileNotFoundError:
            vanished += 1  # deleted since the plan was made (retention, a finished upload's temp)
            continue
        except OSError as exc:
            raise BackupError(f"cannot read {src}: {exc.strerror or exc}") from None
        try:
            dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BackupError(f"cannot write the backup: {os_reason(exc)}") from None
        try:
            size, digest = copy_hashed(src, dst, mode, meter)
        except FileNotFoundError as exc:
            if exc.filename == str(src):
                vanished += 1
                continue
            raise BackupError(f"cannot write the backup: {os_reason(exc)}") from None
        except OSError as exc:
            verb = "read" if exc.filename == str(src) else "write the backup"
            raise BackupError(f"cannot {verb}: {os_reason(exc)}") from None
        entries.append(FileEntry(path=rel, size=size, sha256=digest, mode=mode))
    skipped = list(plan.skipped)
    if vanished:
        skipped.append(f"{vanished} file(s) deleted while the backup was taken (retention)")
    manifest = Manifest(
        format=FORMAT,
        format_version=FORMAT_VERSION if postgres is None else FORMAT_VERSION_POSTGRES,
        postgres=postgres,
        camsight_version=camsight.__version__,
        created_at=datetime.now(UTC),
        source_data_dir=str(data_dir),
        config_origin=str(config_path) if plan.config_file and config_path else None,
        config_file=plan.config_file,
        recordings_folder=str(plan.recordings) if plan.recordings else None,
        uploads_folder=str(plan.uploads) if plan.uploads else None,
        schema_revision=revision,
        counts=counts,
        media=media,
        skipped=skipped,
        files=entries,
    )
    path = tmp / MANIFEST
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        for folder in sorted({(tmp / e.path).parent for e in entries}, key=lambda p: -len(p.parts)):
            fsync_dir(folder)
        fsync_dir(tmp)
    except OSError as exc:
        raise BackupError(f"cannot write the backup: {os_reason(exc)}") from None
    return manifest


def _audit_backup(data_dir: Path, server: str | None, result: BackupResult, actor: Actor) -> None:
    """``backup.create`` in the live store, without touching its schema."""
    from camsight.auth import audit
    from camsight.store.db import open_store

    if "audit_log" not in result.manifest.counts:
        return  # a database older than the audit log: nothing to record into
    m = result.manifest
    try:
        store = open_store(data_dir, url=server, create=False, migrate_schema=False)
        try:
            audit.record(
                store,
                actor,
                Action.BACKUP_CREATE,
                target=str(result.dest),
                detail={
                    "media": m.media,
                    "files": result.files,
                    "bytes": result.bytes,
                    "schema_revision": m.schema_revision,
                    "database_sha256": m.files[0].sha256,
                },
            )
        finally:
            store.close()
    except Exception as exc:  # the backup is whole; say plainly that it is not in the audit log
        raise BackupError(
            f"the backup in {result.dest} is complete, but recording it in the audit log failed: {exc}"
        ) from None
