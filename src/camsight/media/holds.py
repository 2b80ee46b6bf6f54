"""Legal holds: footage a person asked to keep, on a camera's time range or an event, until released.

Retention (:mod:`camsight.media.retention`) never deletes a recorded segment
that overlaps a hold not yet released, whatever its age, the camera's size
limit or the free disk space say. Unlike the automatic holds of events and
exports (``recordings.held_until``, which expire), a legal hold has no end
date: it lasts until someone releases it, and a released hold stays listed
as the record of what was kept. Callers audit placing and releasing (the CLI,
the API); this module only keeps the table.

>>> hold = place_hold(store, "gate", t0, t1, reason="case 2026-118", by="olga")  # doctest: +SKIP
>>> [h.id for h in list_holds(store)[0]]  # doctest: +SKIP
[1]
>>> release_hold(store, hold.id, by="root").released_by  # doctest: +SKIP
'root'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.orm import Session

from camsight.errors import CamsightError, NotFoundError
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow, LegalHoldRow, RecordingRow
from camsight.store.repository import require_camera
from camsight.timeutil import aware, to_utc, utcnow

if TYPE_CHECKING:
    from camsight.config import Config

#: Longest reason kept (a case number and a sentence or two).
MAX_REASON = 500
#: Padding around an event when the camera's own (``record.pre_seconds``/``post_seconds``) is not known.
EVENT_PRE_SECONDS = 5.0
EVENT_POST_SECONDS = 10.0


class HoldError(CamsightError):
    """A hold cannot be placed or released as asked (no reason, an empty range, released already)."""


@dataclass(frozen=True)
class LegalHold:
    """A hold as callers see it: times aware UTC; ``end_at`` None for a hold with no end."""

    id: int
    camera: str
    start_at: datetime
    end_at: datetime | None
    reason: str
    event_id: int | None
    event_uid: str | None
    created_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        """Whether the hold still keeps its footage (not released)."""
        return self.released_at is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601 UTC."""

        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when is not None else None

        return {
            "id": self.id,
            "camera": self.camera,
            "start": iso(self.start_at),
            "end": iso(self.end_at),
            "reason": self.reason,
            "event_id": self.event_id,
            "event_uid": self.event_uid,
            "active": self.active,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "released_at": iso(self.released_at),
            "released_by": self.released_by,
        }


def _hold(row: LegalHoldRow, camera: str) -> LegalHold:
    return LegalHold(
        id=row.id,
        camera=camera,
        start_at=aware(row.start_at),  # type: ignore[arg-type]
        end_at=aware(row.end_at),
        reason=row.reason,
        event_id=row.event_id,
        event_uid=row.event_uid,
        created_by=row.created_by,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        released_at=aware(row.released_at),
        released_by=row.released_by,
    )


def _reason(reason: str) -> str:
    # One line of printable text: it is shown in tables and logs, and PostgreSQL refuses NUL.
    reason = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    if not reason:
        raise HoldError("a hold needs a reason (a case or request number, or why the footage is kept)")
    if len(reason) > MAX_REASON:
        raise HoldError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def place_hold(
    store: Store, camera: str, start: datetime, end: datetime | None, *, reason: str, by: str
) -> LegalHold:
    """Hold ``camera``'s footage from ``start`` to ``end`` (None: no end) until released.

    Naive times are UTC. Raises :class:`~camsight.errors.NotFoundError` for a
    camera the store does not know, :class:`HoldError` for an end not after
    the start or a missing reason.
    """
    start = to_utc(start)
    end = to_utc(end) if end is not None else None
    if end is not None and end <= start:
        raise HoldError(f"the end ({end.isoformat()}) must be after the start ({start.isoformat()})")
    text = _reason(reason)
    with store.session() as session:
        cam = require_camera(session, camera)
        return _insert(session, cam.id, cam.name, start, end, reason=text, by=by)


def place_event_hold(
    store: Store,
    event_id: int,
    *,
    reason: str,
    by: str,
    config: Config | None = None,
    cameras: Collection[str] | None = None,
) -> LegalHold:
    """Hold event ``event_id``'s footage: its span with the padding its camera records around events.

    The padding is the camera's ``record.pre_seconds`` and ``post_seconds`` in
    ``config`` (5 s and 10 s when it has no block there). An event still open
    is held from its start with no end. ``cameras`` limits which cameras'
    events may be held (a user limited to some cameras); another camera's
    event is "not found", like a missing one.
    """
    text = _reason(reason)
    with store.session() as session:
        found = session.execute(
            select(EventRow, Camera.name)
            .join(Camera, Camera.id == EventRow.camera_id)
            .where(EventRow.id == event_id)
        ).one_or_none()
        if found is None or (cameras is not None and found[1] not in cameras):
            raise NotFoundError(f"no event with id {event_id}")
        event, camera = found
        cam = config.camera(camera) if config is not None else None
        pre_seconds = cam.record.pre_seconds if cam is not None else EVENT_PRE_SECONDS
        post_seconds = cam.record.post_seconds if cam is not None else EVENT_POST_SECONDS
        if event.start_at is None:
            raise HoldError(f"event {event_id} has no wall-clock time; hold its camera's time range instead")
        start = to_utc(event.start_at) - timedelta(seconds=pre_seconds)
        end = to_utc(event.end_at) + timedelta(seconds=post_seconds) if event.end_at is not None else None
        return _insert(
            session,
            event.camera_id,
            camera,
            start,
            end,
            reason=text,
            by=by,
            event_id=event.id,
            event_uid=event.uid,
        )


def _insert(
    session: Session,
    camera_id: int,
    camera: str,
    start: datetime,
    end: datetime | None,
    *,
    reason: str,
    by: str,
    **event: Any,
) -> LegalHold:
    """Add one hold row (``event``: its ``event_id`` and ``event_uid``) and return it as listed."""
    row = LegalHoldRow(
        camera_id=camera_id,
        start_at=start,
        end_at=end,
        reason=reason,
        created_by=by[:128],
        created_at=utcnow(),
        **event,
    )
    session.add(row)
    session.flush()
    return _hold(row, camera)


def list_holds(
    store: Store,
    *,
    cameras: Collection[str] | None = None,
    include_released: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LegalHold], int]:
    """Holds newest first (only active ones unless ``include_released``), and how many there are.

    ``cameras`` None lists every camera's; otherwise only those cameras'.
    """
    query = select(LegalHoldRow, Camera.name).join(Camera, Camera.id == LegalHoldRow.camera_id)
    if cameras is not None:
        query = query.where(Camera.name.in_(list(cameras)))
    if not include_released:
        query = query.where(LegalHoldRow.released_at.is_(None))
    with store.sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(LegalHoldRow.id.desc()).limit(limit).offset(offset)).all()
        return [_hold(row, name) for row, name in rows], total


def get_hold(store: Store, hold_id: int) -> LegalHold | None:
    """The hold ``hold_id``, released or not; None when there is none."""
    with store.sessions() as session:
        found = session.execute(
            select(LegalHoldRow, Camera.name)
            .join(Camera, Camera.id == LegalHoldRow.camera_id)
            .where(LegalHoldRow.id == hold_id)
        ).one_or_none()
        return _hold(*found) if found is not None else None


def release_hold(store: Store, hold_id: int, *, by: str) -> LegalHold:
    """Release hold ``hold_id``: its footage goes back under normal retention. Returns the released hold.

    Raises :class:`~camsight.errors.NotFoundError` when there is no such hold
    and :class:`HoldError` when it was released already.
    """
    with store.session() as session:
        # Conditional: two releases at once release it once, and the second is told.
        changed = session.execute(
            update(LegalHoldRow)
            .where(LegalHoldRow.id == hold_id, LegalHoldRow.released_at.is_(None))
            .values(released_at=utcnow(), released_by=by[:128])
        ).rowcount  # type: ignore[attr-defined]
    hold = get_hold(store, hold_id)
    if hold is None:
        raise NotFoundError(f"no hold with id {hold_id}")
    if changed != 1:
        when = hold.released_at.isoformat() if hold.released_at else "earlier"
        raise HoldError(f"hold {hold_id} was released already ({when}, by {hold.released_by})")
    return hold


def legally_held() -> ColumnElement[bool]:
    """SQL: the ``recordings`` row overlaps a hold of its camera that is not released.

    Retention adds it to its queries and to the very DELETE, so a hold placed
    while a pass runs is honoured too.
    """
    return exists().where(
        LegalHoldRow.camera_id == RecordingRow.camera_id,
        LegalHoldRow.released_at.is_(None),
        or_(LegalHoldRow.end_at.is_(None), RecordingRow.start_at < LegalHoldRow.end_at),
        or_(RecordingRow.end_at.is_(None), RecordingRow.end_at > LegalHoldRow.start_at),
    )
