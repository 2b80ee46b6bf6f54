"""``camsight restore``: bring a backup (see :mod:`camsight.service.backup`) back into a data folder.

Checked before anything is written: the manifest, every file's size and
sha256, that nothing was added to the backup, and that this camsight knows
the database's schema. The copy is built in a hidden folder next to the data
folder (inside it when the data folder is a mount point), then the database's
row counts are compared with the manifest and the audit chain is verified;
only then does the copy become the data folder. A data folder that is not
empty is refused unless ``force``, and then its contents are moved aside (to
``<folder>.before-restore-<time>``), never deleted.

A backup of a PostgreSQL store is restored into the database the store URL names
(``CAMSIGHT_DATABASE_URL``, or the config's ``store:``) with ``pg_restore``, before the
counts and the audit chain are checked; a database that already holds tables is
refused unless ``force`` (its contents then go to another schema), and any later
failure puts the database back as it was (:mod:`camsight.service.pg_backup`).

>>> restore_backup(Path("/backups/camsight-2026-12-07"), Path("/srv/camsight-new"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from camsight.auth.audit import Action, Actor, VerifyResult
from camsight.errors import CamsightError
from camsight.paths import CONFIG_NAME
from camsight.service.backup import (
    DB_NAME,
    DUMP_NAME,
    MANIFEST,
    BackupError,
    FileEntry,
    Manifest,
    Meter,
    Progress,
    copy_hashed,
    fsync_dir,
    hash_file,
    os_reason,
    read_manifest,
    server_url,
    table_counts,
    temp_folder_beside,
)

if TYPE_CHECKING:
    from camsight.service.pg_backup import RestoreTarget


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: where the data now is and what was checked."""

    data_dir: Path
    manifest: Manifest
    audit: VerifyResult
    """The audit chain as restored (before the restore's own entry was added)."""
    counts: dict[str, int]
    """Rows per table as restored; equal to the manifest's."""
    config: Path | None
    """Where the backed-up config file now is."""
    moved_aside: Path | None
    """Where the folder's earlier contents went (with ``force``)."""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- checking a backup


def _known_revision(manifest: Manifest) -> None:
    from alembic.script import ScriptDirectory

    from camsight.store.db import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))
    try:
        known = scripts.get_revision(manifest.schema_revision) is not None
    except Exception:  # alembic raises its own errors for an unknown or malformed id
        known = False
    if not known:
        raise BackupError(
            f"the backup's database is at schema revision {manifest.schema_revision!r}, which this camsight "
            f"({scripts.get_current_head()}) does not know; restore it with camsight "
            f"{manifest.camsight_version} or newer"
        )


def _present(src: Path) -> set[str]:
    """Every entry under ``src`` except the manifest, as POSIX paths relative to ``src``."""
    found: set[str] = set()
    for root, dirs, files in os.walk(src):
        here = Path(root)
        for name in files + [d for d in dirs if (here / d).is_symlink()]:
            rel = (here / name).relative_to(src).as_posix()
            if rel != MANIFEST:
                found.add(rel)
    return found


def verify_backup(src: Path, progress: Progress | None = None, manifest: Manifest | None = None) -> Manifest:
    """Check the backup in ``src`` against its manifest (read here unless given); the manifest, or a
    :class:`BackupError` naming the first file that is missing, added or changed."""
    src = Path(os.path.abspath(Path(src).expanduser()))
    manifest = manifest or read_manifest(src)
    _known_revision(manifest)
    try:
        extra = sorted(_present(src) - {f.path for f in manifest.files})
    except OSError as exc:
        raise BackupError(f"cannot read the backup: {os_reason(exc)}") from None
    if extra:
        raise BackupError(
            f"{src / extra[0]} is not listed in the manifest (added after the backup was taken)"
        )
    meter = Meter("checking", manifest.total_bytes, progress)
    for entry in manifest.files:
        path = src / entry.path
        if path.is_symlink() or not path.is_file():
            raise BackupError(f"{path} is missing from the backup (listed in its manifest)")
        try:
            size, digest = hash_file(path, meter)
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
        if size != entry.size or digest != entry.sha256:
            raise BackupError(f"{path} does not match its checksum in the manifest (changed or damaged)")
    return manifest


# --------------------------------------------------------------------------- restoring


def _target_place(entry: FileEntry, manifest: Manifest) -> str:
    """Where a backed-up file goes, relative to the data folder."""
    top, _, rest = entry.path.partition("/")
    if top == "data":
        return rest
    # The config in force lived outside the data folder: it becomes the folder's own config.yaml,
    # which every command then finds, unless the folder already had one of its own.
    has_own = any(f.path == f"data/{CONFIG_NAME}" for f in manifest.files)
    if not has_own:
        return CONFIG_NAME
    name = Path(rest).name
    return name if name != CONFIG_NAME else "config.restored.yaml"


def _check_target(data_dir: Path, src: Path, force: bool) -> bool:
    """Refuse a data folder that cannot take the restore; whether it has contents to move aside."""
    if src == data_dir or data_dir in src.parents:
        raise BackupError(f"the backup {src} is inside {data_dir}; restore into another folder")
    if src in data_dir.parents:
        raise BackupError(f"{data_dir} is inside the backup {src}; restore into another folder")
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        raise BackupError(f"{data_dir} is not a folder")
    try:
        busy = data_dir.is_dir() and any(data_dir.iterdir())
    except OSError as exc:
        raise BackupError(f"cannot read {data_dir}: {exc.strerror or exc}") from None
    if busy and not force:
        raise BackupError(
            f"{data_dir} is not empty; restore into a new folder with --data, or add --force "
            "to move its contents aside"
        )
    return busy


def restore_backup(
    src: Path,
    data_dir: Path,
    *,
    force: bool = False,
    actor: Actor | None = None,
    progress: Progress | None = None,
    database_url: str | None = None,
) -> RestoreResult:
    """Restore the backup in ``src`` into ``data_dir`` (created if needed); see the module's notes.

    The restore is recorded in the restored audit log as ``backup.restore`` by ``actor``.
    ``database_url``: the store's database when it is not the SQLite file: a backup of a
    PostgreSQL store is restored into it (an empty one, unless ``force``).
    """
    server = server_url(database_url)
    src = Path(os.path.abspath(Path(src).expanduser()))
    data_dir = Path(os.path.abspath(Path(data_dir).expanduser()))
    # The cheap refusals first (a damaged manifest, a folder or database in use), then every
    # checksum, all before anything is written.
    manifest = read_manifest(src)
    _check_kind(manifest, server)
    busy = _check_target(data_dir, src, force)
    database = None
    if manifest.postgres is not None and server is not None:
        from camsight.service.pg_backup import check_target

        database = check_target(server, manifest.postgres, force)
    verify_backup(src, progress, manifest)
    mount = data_dir.is_dir() and os.path.ismount(data_dir)
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        # On a mount point the copy must be built inside it: a rename cannot cross file systems.
        if mount:
            tmp = data_dir / f".restore-{secrets.token_hex(4)}"
            tmp.mkdir(mode=0o700)
        else:
            tmp = temp_folder_beside(data_dir, "restore")
    except OSError as exc:
        raise BackupError(f"cannot write in {data_dir.parent}: {os_reason(exc)}") from None
    try:
        config = _copy_in(src, tmp, manifest, progress)
        if database is None:
            counts = _check_counts(_sqlite_counts(tmp), manifest)
        else:
            from camsight.service.pg_backup import restore_database, restored_counts

            # From the copy just checked again, not the backup (which could change meanwhile).
            restore_database(database, tmp / DUMP_NAME)
            (tmp / DUMP_NAME).unlink()  # the data folder of a PostgreSQL store holds no database
            counts = _check_counts(restored_counts(database.target), manifest)
        audit_result, notes = _verify_and_record(tmp, src, manifest, actor or Actor.cli(), server)
        moved = _swap_in(tmp, data_dir, busy, mount)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if database is not None:
            from camsight.service.pg_backup import undo_restore

            undo_restore(database)  # nothing restored: the database as it was, too
        raise
    if database is not None:
        notes += _database_notes(manifest, database)
    notes += _notes(manifest, data_dir)
    return RestoreResult(
        data_dir=data_dir,
        manifest=manifest,
        audit=audit_result,
        counts=counts,
        config=data_dir / config if config else None,
        moved_aside=moved,
        notes=notes,
    )


def _copy_in(src: Path, tmp: Path, manifest: Manifest, progress: Progress | None) -> str | None:
    """Copy every file into ``tmp``, checking it again (it must not change between check and copy)."""
    meter = Meter("restoring", manifest.total_bytes, progress)
    config: str | None = None
    for entry in manifest.files:
        place = _target_place(entry, manifest)
        if entry.path == manifest.config_file:
            config = place
        dst = tmp / place
        try:
            dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            size, digest = copy_hashed(src / entry.path, dst, entry.mode, meter)
        except OSError as exc:
            raise BackupError(f"cannot restore {entry.path}: {os_reason(exc)}") from None
        if size != entry.size or digest != entry.sha256:
            raise BackupError(f"{src / entry.path} changed while it was restored; nothing was restored")
    try:
        for folder in sorted({(tmp / _target_place(e, manifest)).parent for e in manifest.files}):
            fsync_dir(folder)
    except OSError as exc:
        raise BackupError(f"cannot restore: {os_reason(exc)}") from None
    return config


def _check_kind(manifest: Manifest, server: str | None) -> None:
    """Refuse a backup of one kind of store restored as the other (camsight does not convert)."""
    from camsight.config.store import redact_url

    if manifest.postgres is None and server is not None:
        raise BackupError(
            f"this backup is of the embedded SQLite store, and the store is now the PostgreSQL database "
            f"{redact_url(server)}; unset store.url and CAMSIGHT_DATABASE_URL to restore it as the "
            "SQLite file"
        )
    if manifest.postgres is not None and server is None:
        raise BackupError(
            f"this backup is of the PostgreSQL store {manifest.postgres.database}: name the database to "
            "restore it into with CAMSIGHT_DATABASE_URL (or --config with a store.url)"
        )


def _sqlite_counts(tmp: Path) -> dict[str, int]:
    try:
        con = sqlite3.connect(f"file:{tmp / DB_NAME}?mode=ro", uri=True)
        try:
            return table_counts(con)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the backup's database cannot be read: {exc}") from None


def _check_counts(counts: dict[str, int], manifest: Manifest) -> dict[str, int]:
    """The restored rows per table (``counts``), which must be the manifest's."""
    for table in sorted(set(counts) | set(manifest.counts)):
        have, want = counts.get(table), manifest.counts.get(table)
        if have != want:
            raise BackupError(
                f"the backup's database does not match its manifest: table {table} has "
                f"{'no' if have is None else have} rows where the manifest says {want}; nothing was restored"
            )
    return counts


def _verify_and_record(
    tmp: Path, src: Path, manifest: Manifest, actor: Actor, server: str | None = None
) -> tuple[VerifyResult, list[str]]:
    """Open the copy (upgrading an older schema), verify its audit chain and record the restore in it."""
    from camsight.auth import audit
    from camsight.store.db import open_store

    notes: list[str] = []
    try:
        store = open_store(tmp, url=server)
    except CamsightError as exc:
        raise BackupError(f"the backup's database cannot be opened ({exc}); nothing was restored") from None
    try:
        with store.engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if revision != manifest.schema_revision:
            notes.append(f"database upgraded from schema revision {manifest.schema_revision} to {revision}")
        result = audit.verify(store)
        if not result.ok:
            raise BackupError(f"the backup's {result.message}; nothing was restored")
        audit.record(
            store,
            actor,
            Action.BACKUP_RESTORE,
            target=str(src),
            detail={
                "backup_created_at": manifest.created_at.isoformat(),
                "camsight_version": manifest.camsight_version,
                "schema_revision": manifest.schema_revision,
                "files": len(manifest.files),
                "bytes": manifest.total_bytes,
                "media": manifest.media,
            },
        )
    except CamsightError:
        raise
    except Exception as exc:  # an error of the database itself: one line, nothing restored
        raise BackupError(f"the backup's database cannot be opened: {exc}; nothing was restored") from None
    finally:
        store.close()
    return result, notes


def _swap_in(tmp: Path, data_dir: Path, busy: bool, mount: bool) -> Path | None:
    """Make ``tmp`` the data folder; what was there goes aside. Where it went, if anywhere."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        if mount:
            return _swap_in_mount(tmp, data_dir, busy, stamp)
        aside = None
        if busy:
            aside = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
            os.rename(data_dir, aside)
        elif data_dir.is_dir():
            data_dir.rmdir()
        try:
            os.rename(tmp, data_dir)
        except OSError:
            if aside is not None:
                os.rename(aside, data_dir)  # put back what was there
            raise
        fsync_dir(data_dir.parent)
        return aside
    except OSError as exc:
        raise BackupError(f"cannot put the restored data in {data_dir}: {os_reason(exc)}") from None


def _swap_in_mount(tmp: Path, data_dir: Path, busy: bool, stamp: str) -> Path | None:
    """On a mount point: earlier contents into a folder inside it, then the copy's entries up one level."""
    aside = None
    if busy:
        aside = data_dir / f"before-restore-{stamp}"
        aside.mkdir(mode=0o700)
        for item in data_dir.iterdir():
            if item not in (tmp, aside):
                os.rename(item, aside / item.name)
    for item in tmp.iterdir():
        os.rename(item, data_dir / item.name)
    tmp.rmdir()
    fsync_dir(data_dir)
    return aside


def _database_notes(manifest: Manifest, database: RestoreTarget) -> list[str]:
    """What to know about the restored PostgreSQL database."""
    notes: list[str] = []
    if database.aside is not None:
        notes.append(
            f"the database's earlier contents are in its schema {database.aside} (drop it with "
            f"DROP SCHEMA {database.aside} CASCADE once it is not needed)"
        )
    if manifest.postgres is not None and manifest.postgres.database != database.target.shown:
        notes.append(
            f"the backup was taken from {manifest.postgres.database} and restored into "
            f"{database.target.shown}: point store.url (or CAMSIGHT_DATABASE_URL) of the nodes at it"
        )
    return notes


def _notes(manifest: Manifest, data_dir: Path) -> list[str]:
    """What the user should know about the restored folder."""
    notes: list[str] = []
    source = Path(manifest.source_data_dir)
    if manifest.recordings_folder and Path(manifest.recordings_folder) != source / "recordings":
        notes.append(
            f"recordings were in {manifest.recordings_folder} (storage.recordings); they are restored to "
            f"{data_dir / 'recordings'}: set storage.recordings to it, or move them"
        )
    if manifest.uploads_folder and Path(manifest.uploads_folder) != source / "uploads":
        notes.append(
            f"uploads were in {manifest.uploads_folder} (uploads.folder); they are restored to "
            f"{data_dir / 'uploads'}"
        )
    notes += [f"not in the backup: {item}" for item in manifest.skipped]
    return notes
