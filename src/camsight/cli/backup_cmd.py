"""``camsight backup`` and ``camsight restore``: a consistent copy of the data folder, and back.

The work is done by :mod:`camsight.service.backup` and :mod:`camsight.service.restore`;
this module parses, shows progress and prints the summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import DownloadColumn, TaskID, TransferSpeedColumn

from camsight.cli.options import ConfigOpt, DataOpt
from camsight.cli.output import err_console, out_console, progress_bar

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A byte-counting bar per phase on stderr; the callback the domain functions report to.

    The bars appear with the first report, so a refusal before any work prints only its error.
    """
    bar = progress_bar(DownloadColumn(), TransferSpeedColumn())
    tasks: dict[str, TaskID] = {}

    def report(phase: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    try:
        yield report
    finally:
        if tasks:
            bar.stop()


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _counts_line(counts: dict[str, int]) -> str:
    shown = ("cameras", "sources", "tracks", "observations", "events", "recordings", "users", "audit_log")
    parts = [f"{name} {counts[name]}" for name in shown if name in counts]
    return f"{len(counts)} tables, {sum(counts.values())} rows ({', '.join(parts)})"


def backup(
    dest: Annotated[
        Path, typer.Argument(help="New folder to write the backup to (must not exist).", show_default=False)
    ],
    media: Annotated[
        bool,
        typer.Option("--media", help="Also copy media: recordings, thumbnails, event snapshots, uploads."),
    ] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Back up the data folder, also while `camsight run` or an index is writing to it.

    Copies the database (a consistent snapshot, by SQLite's online backup; a
    PostgreSQL store is dumped by pg_dump, from PATH or CAMSIGHT_PG_DUMP), the
    config file in force and the keys in the data folder; with --media the
    footage too. A manifest lists every file with its sha256. DEST appears only
    when the backup is complete. The backup holds password hashes and keys:
    keep it as private as the data folder.

    Example: camsight backup /backups/camsight-2026-12-07 --media
    """
    from camsight.config import choose_config
    from camsight.service.backup import create_backup
    from camsight.store.db import url_for

    choice = choose_config(config, data)
    if choice.found:
        err_console.print(f"[dim]config: {escape(str(choice.path))}[/]", soft_wrap=True)
    cfg = choice.config
    with _progress() as report:
        result = create_backup(
            dest,
            choice.data_dir,
            config_path=choice.path if choice.found else None,
            recordings=cfg.storage.recordings,
            uploads=cfg.uploads.folder,
            media=media,
            progress=report,
            database_url=url_for(cfg.store),
        )
    m = result.manifest
    if json_out:
        out_console.print_json(
            json.dumps(
                {
                    "backup": str(result.dest),
                    "files": result.files,
                    "bytes": result.bytes,
                    "schema_revision": m.schema_revision,
                    "counts": m.counts,
                    "media": m.media,
                    "skipped": m.skipped,
                }
            )
        )
        return
    out_console.print(
        f"backup in {escape(str(result.dest))}: {_files(result.files)}, {_mb(result.bytes)}", soft_wrap=True
    )
    out_console.print(
        f"database at schema revision {m.schema_revision}: {escape(_counts_line(m.counts))}",
        soft_wrap=True,
    )
    for item in m.skipped:
        err_console.print(f"[dim]not included: {escape(item)}[/]", soft_wrap=True)


def restore(
    src: Annotated[
        Path, typer.Argument(help="A backup folder made by `camsight backup`.", show_default=False)
    ],
    data: DataOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore into a data folder that is not empty: its contents are moved aside "
            "(to FOLDER.before-restore-TIME), never deleted; and into a PostgreSQL database that "
            "holds tables: they are moved to a schema camsight_before_restore_TIME.",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A config whose store: names the PostgreSQL database to restore into "
            "(default: CAMSIGHT_DATABASE_URL, else CAMSIGHT_CONFIG's).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore a backup into a data folder (--data; default: CAMSIGHT_DATA or the per-user folder).

    Every file is checked against the manifest before anything is written;
    then the restored database's row counts are compared with the manifest and
    its audit chain is verified. Stop `camsight run` on that folder first, and
    run this as the user the service runs as, so the files are that user's.
    A backup of a PostgreSQL store goes into the database CAMSIGHT_DATABASE_URL
    (or --config's store:) names, by pg_restore; stop every node first.

    Example: camsight restore /backups/camsight-2026-12-07 --data /var/lib/camsight
    """
    from camsight.config import load_config
    from camsight.paths import default_data_dir
    from camsight.service.restore import restore_backup
    from camsight.store.db import url_for

    folder = (data or default_data_dir()).expanduser()
    # Not the data folder's config.yaml: that is what the restore replaces. The target database
    # is named by the environment or a config given for it.
    url = url_for(load_config(config).store)
    with _progress() as report:
        result = restore_backup(src, folder, force=force, progress=report, database_url=url)
    m = result.manifest
    if json_out:
        out_console.print_json(
            json.dumps(
                {
                    "data": str(result.data_dir),
                    "files": len(m.files),
                    "bytes": m.total_bytes,
                    "backup_created_at": m.created_at.isoformat(),
                    "schema_revision": m.schema_revision,
                    "counts": result.counts,
                    "audit": result.audit.to_dict(),
                    "config": str(result.config) if result.config else None,
                    "moved_aside": str(result.moved_aside) if result.moved_aside else None,
                    "notes": result.notes,
                }
            )
        )
        return
    out_console.print(
        f"restored {_files(len(m.files))} ({_mb(m.total_bytes)}) from the backup of "
        f"{m.created_at.astimezone():%Y-%m-%d %H:%M:%S} into {escape(str(result.data_dir))}",
        soft_wrap=True,
    )
    out_console.print(f"database: {escape(_counts_line(result.counts))}, as in the manifest", soft_wrap=True)
    out_console.print(escape(result.audit.message), soft_wrap=True)
    if result.config is not None:
        out_console.print(f"config: {escape(str(result.config))}", soft_wrap=True)
    if result.moved_aside is not None:
        out_console.print(
            f"the folder's earlier contents are in {escape(str(result.moved_aside))}", soft_wrap=True
        )
    for note in result.notes:
        err_console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
