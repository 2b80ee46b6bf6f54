"""Uploaded files waiting to be indexed: their folders, and the sweep of those an upload left behind.

Each upload is stored alone in a folder named by 32 hex digits under the
uploads folder; a job refers to the file inside it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

from sqlalchemy import select

from camsight.config import Config
from camsight.paths import uploads_dir
from camsight.store.db import Store
from camsight.store.models import JobRow, Source

log = logging.getLogger(__name__)

#: An upload folder untouched this long without a job is left over from a killed upload.
ORPHAN_AFTER_SECONDS = 3600.0
#: Upload folders are named by ``uuid4().hex``: only such folders are ever swept.
_UPLOAD_FOLDER = re.compile(r"[0-9a-f]{32}")


def remove_upload(path: Path) -> None:
    """Delete an uploaded file and its own folder (uploads are stored one per folder)."""
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    except OSError as exc:
        log.warning("cannot remove upload %s: %s", path, exc)


def uploads_folder(store: Store, config: Config) -> Path:
    """Where uploads are kept: ``uploads.folder`` (``~`` expanded), else ``<data>/uploads``."""
    return uploads_dir(store.root, config.uploads.folder)


def sweep_orphan_uploads(
    store: Store, root: Path, *, older_than: float = ORPHAN_AFTER_SECONDS, now: float | None = None
) -> list[Path]:
    """Remove upload folders that no job refers to and nothing touched for ``older_than`` seconds.

    They are what an upload killed mid-transfer (the process, not the
    client) leaves behind. Only folders named like an upload (32 hex
    digits) are candidates, so a shared ``uploads.folder`` keeps everything
    else; the age keeps an upload still streaming in. Returns what was removed.
    """
    if not root.is_dir():
        return []
    with store.sessions() as session:
        paths = [
            *session.scalars(select(JobRow.path).where(JobRow.path.is_not(None))),
            *session.scalars(select(Source.uri)),  # an indexed upload, should its job be gone
        ]
    used = {Path(p).parent.name for p in paths if p}
    now = time.time() if now is None else now
    removed: list[Path] = []
    for folder in root.iterdir():
        if not _UPLOAD_FOLDER.fullmatch(folder.name) or folder.name in used or folder.is_symlink():
            continue
        try:
            if not folder.is_dir() or now - _last_touched(folder) < older_than:
                continue
        except OSError:
            continue
        remove_upload_folder(folder)
        removed.append(folder)
        log.info("removed an upload that never became a job", extra={"folder": folder.name})
    return removed


def _last_touched(folder: Path) -> float:
    """The newest modification time of ``folder`` and the files directly in it."""
    times = [folder.stat().st_mtime]
    with os.scandir(folder) as entries:
        times.extend(e.stat(follow_symlinks=False).st_mtime for e in entries)
    return max(times)


def remove_upload_folder(folder: Path) -> None:
    """Delete a whole upload folder (a rejected upload); never raises."""
    shutil.rmtree(folder, ignore_errors=True)
