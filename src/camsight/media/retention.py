"""Retention of recorded segments: age and size limits per camera, and a floor of free disk space.

Run :func:`enforce_retention` every few minutes (the live service does)::

    report = enforce_retention(store, recordings, {"gate": cfg.cameras["gate"].record}, min_free_gb=1.0)
    for warning in report.warnings:
        log.warning(warning)

A segment is never deleted while it is held (``held_until`` in the future,
see :func:`hold`), while it overlaps a legal hold that is not released (see
:mod:`camsight.media.holds`), or while it is being written (``end_at`` null, and its file changed
within the last hour). Each deletion removes the file and then its row in
one transaction, so a segment is never listed without its file for long,
and a file is never left behind without its row.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select, update

from camsight.media.holds import legally_held
from camsight.store.models import Camera, RecordingRow
from camsight.store.repository import require_camera

if TYPE_CHECKING:
    from camsight.config import RecordConfig
    from camsight.store.db import Store

log = logging.getLogger(__name__)

#: Bytes in the GB of ``retain_gb`` and ``min_free_gb`` (decimal, as disks are sold).
GB = 1_000_000_000
#: A segment with no end whose file has not changed for this long is not being written
#: (its recorder crashed and never came back): retention may delete it.
STALE_WRITING = timedelta(hours=1)
#: Hold reasons are kept as one text, joined by this.
_SEP = "; "


@dataclass
class RetentionReport:
    """What one retention pass deleted, and why."""

    deleted: int = 0
    freed_bytes: int = 0
    #: Segments deleted per camera.
    by_camera: dict[str, int] = field(default_factory=dict)
    #: Deleted per reason: ``age``, ``size`` and ``disk``.
    by_reason: dict[str, int] = field(default_factory=dict)
    #: Rows removed because their file was already gone.
    missing_files: int = 0
    #: Segments kept only because they are held.
    held: int = 0
    #: Free bytes on the recordings' filesystem after the pass (None when it cannot be read).
    free_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Seg:
    id: int
    camera: str
    path: str
    start_at: datetime
    end_at: datetime | None
    size: int
    held: bool
    writing: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _size(root: Path, seg: RecordingRow) -> int:
    """The row's size, or the file's while it is being written (the row says 0 until it closes)."""
    if seg.end_at is not None and seg.size_bytes:
        return seg.size_bytes
    try:
        return (root / seg.path).stat().st_size
    except OSError:
        return seg.size_bytes or 0


def _writing(root: Path, row: RecordingRow) -> bool:
    """Whether a recorder is still writing the segment: no end yet and its file changed lately."""
    if row.end_at is not None:
        return False
    try:
        mtime = (root / row.path).stat().st_mtime
    except OSError:
        return False  # the recorder creates the file before the row: this one is lost
    # Real time, not the pass's ``now``: the file's clock is the real one.
    return _now() - datetime.fromtimestamp(mtime, UTC) < STALE_WRITING


def _segments(store: Store, root: Path, now: datetime, camera: str | None = None) -> list[_Seg]:
    """Segments oldest first, marked when held or being written (so not to be deleted now)."""
    query = (
        select(RecordingRow, Camera.name, legally_held().label("legal"))
        .join(Camera, Camera.id == RecordingRow.camera_id)
        .order_by(RecordingRow.start_at, RecordingRow.id)
    )
    if camera is not None:
        query = query.where(Camera.name == camera)
    with store.session() as session:
        rows = session.execute(query).all()
        return [
            _Seg(
                id=row.id,
                camera=name,
                path=row.path,
                start_at=row.start_at,
                end_at=row.end_at,
                size=_size(root, row),
                held=bool(legal) or (row.held_until is not None and row.held_until > now),
                writing=_writing(root, row),
            )
            for row, name, legal in rows
        ]


def _delete(store: Store, root: Path, seg: _Seg, now: datetime, report: RetentionReport, reason: str) -> bool:
    """Delete one segment's file and row together, unless it was held meanwhile; True if deleted."""
    path = root / seg.path
    try:
        with store.session() as session:
            # Deleting the row first takes the database's write lock, so an export
            # cannot hold this segment between the check and the file's removal.
            result = session.execute(
                delete(RecordingRow).where(
                    RecordingRow.id == seg.id,
                    or_(RecordingRow.held_until.is_(None), RecordingRow.held_until <= now),
                    ~legally_held(),
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            try:
                path.unlink()
            except FileNotFoundError:
                report.missing_files += 1
    except OSError as exc:
        # The row was rolled back with the failed removal: file and row stay together.
        report.warnings.append(f"cannot delete {path}: {exc.strerror or exc}")
        return False
    _prune_folders(root, path.parent)
    report.deleted += 1
    report.freed_bytes += seg.size
    report.by_camera[seg.camera] = report.by_camera.get(seg.camera, 0) + 1
    report.by_reason[reason] = report.by_reason.get(reason, 0) + 1
    log.debug("deleted segment", extra={"path": seg.path, "reason": reason})
    return True


def _prune_folders(root: Path, folder: Path) -> None:
    """Remove day and camera folders left empty, never ``root`` itself."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): stop here
        folder = folder.parent


def enforce_retention(
    store: Store,
    root: Path,
    cameras: Mapping[str, RecordConfig],
    min_free_gb: float,
    *,
    disk_usage: Callable[[Path], Any] = shutil.disk_usage,
    now: datetime | None = None,
) -> RetentionReport:
    """Delete recorded segments past each camera's limits, then until the disk has room.

    Per camera in ``cameras``: segments that ended more than ``retain_days``
    ago, then the oldest beyond ``retain_gb``. Then, if the filesystem of
    ``root`` has less than ``min_free_gb`` free, the oldest segments of any
    camera until it has (with a warning in the report, as footage is lost
    earlier than configured). Held segments and those being written are kept.

    ``disk_usage`` (like :func:`shutil.disk_usage`: ``.free`` in bytes) can be
    replaced, e.g. in tests.
    """
    root = Path(root)
    now = now or _now()
    report = RetentionReport()
    for name, settings in cameras.items():
        segs = _segments(store, root, now, name)
        if settings.retain_days is not None:
            cutoff = now - timedelta(days=settings.retain_days)
            for seg in segs:
                # A crashed recorder's segment has no end: its start is the best there is.
                if (seg.end_at or seg.start_at) <= cutoff and not seg.writing:
                    if seg.held:
                        report.held += 1
                    else:
                        _delete(store, root, seg, now, report, "age")
            segs = _segments(store, root, now, name)
        if settings.retain_gb is not None:
            limit = int(settings.retain_gb * GB)
            total = sum(s.size for s in segs)
            for seg in segs:
                if total <= limit:
                    break
                if seg.held or seg.writing:
                    report.held += seg.held
                    continue
                if _delete(store, root, seg, now, report, "size"):
                    total -= seg.size
            if total > limit:
                report.warnings.append(
                    f"camera {name}: {total / GB:.2f} GB of footage is over its retain_gb "
                    f"({settings.retain_gb:g} GB), but the rest is held or being written"
                )
    _free_space(store, root, min_free_gb, disk_usage, now, report)
    for warning in report.warnings:
        log.warning(warning)
    return report


def _free_space(
    store: Store,
    root: Path,
    min_free_gb: float,
    disk_usage: Callable[[Path], Any],
    now: datetime,
    report: RetentionReport,
) -> None:
    where = root if root.exists() else root.parent
    try:
        free = int(disk_usage(where).free)
    except OSError as exc:
        report.warnings.append(f"cannot read free space of {root}: {exc.strerror or exc}")
        return
    report.free_bytes = free
    need = int(min_free_gb * GB)
    if free >= need:
        return
    start_free = free
    deleted = freed = 0
    candidates = [s for s in _segments(store, root, now) if not (s.held or s.writing)]
    while free < need and candidates:
        # Delete about what is missing (sizes are known), then measure again:
        # other files on the disk may change too.
        missing = need - free
        batch = 0
        while candidates and batch < missing:
            seg = candidates.pop(0)
            if _delete(store, root, seg, now, report, "disk"):
                batch += seg.size
                deleted += 1
        freed += batch
        try:
            free = int(disk_usage(where).free)
        except OSError:
            break
        report.free_bytes = free
    message = (
        f"low disk space on {root}: {start_free / GB:.2f} GB free, below min_free_gb {min_free_gb:g}; "
        f"deleted the {deleted} oldest segment(s) ({freed / GB:.2f} GB) ahead of their retention"
    )
    if free < need:
        message += f", still only {free / GB:.2f} GB free (the rest is held, being written or not footage)"
    report.warnings.append(message)


def _overlapping(camera_id: int, start: datetime, end: datetime) -> Any:
    return and_(
        RecordingRow.camera_id == camera_id,
        RecordingRow.start_at < end,
        or_(RecordingRow.end_at.is_(None), RecordingRow.end_at > start),
    )


def hold(store: Store, camera: str, start: datetime, end: datetime, until: datetime, reason: str) -> int:
    """Keep the camera's segments overlapping ``start``..``end`` until ``until``, whatever retention says.

    An existing longer hold is kept; reasons accumulate (``"event 12; export"``),
    so :func:`release` of one reason leaves the others. Returns how many
    segments are held.

    >>> hold(store, "gate", t0, t1, until=t1 + timedelta(days=30), reason="event 12")  # doctest: +SKIP
    3
    """
    with store.session() as session:
        cam = require_camera(session, camera)
        rows = session.scalars(select(RecordingRow).where(_overlapping(cam.id, start, end))).all()
        for row in rows:
            if row.held_until is None or row.held_until < until:
                row.held_until = until
            reasons = _reasons(row.hold_reason)
            if reason not in reasons:
                reasons.append(reason)
            row.hold_reason = _SEP.join(reasons)
        return len(rows)


def release(store: Store, camera: str, start: datetime, end: datetime, reason: str | None = None) -> int:
    """Drop the hold on the camera's segments overlapping ``start``..``end``; returns how many changed.

    With ``reason``, only that reason is removed, and a segment stays held
    (until the latest time asked) while another reason remains.
    """
    with store.session() as session:
        cam = require_camera(session, camera)
        if reason is None:
            ids = session.scalars(select(RecordingRow.id).where(_overlapping(cam.id, start, end))).all()
            session.execute(
                update(RecordingRow).where(RecordingRow.id.in_(ids)).values(held_until=None, hold_reason=None)
            )
            return len(ids)
        changed = 0
        held = select(RecordingRow).where(
            _overlapping(cam.id, start, end), RecordingRow.hold_reason.isnot(None)
        )
        for row in session.scalars(held).all():
            reasons = _reasons(row.hold_reason)
            if reason not in reasons:
                continue
            reasons.remove(reason)
            row.hold_reason = _SEP.join(reasons) or None
            if not reasons:
                row.held_until = None
            changed += 1
        return changed


def _reasons(text: str | None) -> list[str]:
    return [r for r in (text or "").split(_SEP) if r]
