"""Storing rule output (events, snapshots, line crossings), listing and acknowledging events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from camsight.errors import NotFoundError
from camsight.records.events import Event, RulesOutput
from camsight.store.db import Store
from camsight.store.media import source_media_dir, write_jpeg
from camsight.store.models import Camera, EventRow, LineCrossingRow, Source, utcnow
from camsight.store.repository import require_camera
from camsight.timeutil import aware

PAYLOAD_SCHEMA = "camsight.event/1"
#: Seconds of footage before and after an event in its clip link.
CLIP_PADDING = 5.0


def _iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value is not None else None


def event_payload(row: EventRow, camera: str, kind: str, source: str | None) -> dict[str, Any]:
    """The JSON an alert sink receives for one event change (see docs: ``camsight.event/1``)."""
    return {
        "schema": PAYLOAD_SCHEMA,
        "kind": kind,
        "uid": row.uid,
        "id": row.id,
        "type": row.type,
        "rule": row.rule,
        "severity": row.severity,
        "camera": camera,
        "state": row.state,
        "start": _iso(row.start_at),
        "end": _iso(row.end_at),
        "start_t": round(row.start_t, 3),
        "end_t": None if row.end_t is None else round(row.end_t, 3),
        "zone": row.zone,
        "line": row.line,
        "tracks": list(row.track_local_ids or []),
        "summary": row.summary,
        "details": row.details or {},
        "snapshot": row.snapshot,
        "source": source,
        # The footage to review: the source from a little before to a little after the situation.
        "clip": None
        if source is None
        else {
            "source": source,
            "from_t": round(max(0.0, row.start_t - CLIP_PADDING), 3),
            "to_t": round((row.end_t if row.end_t is not None else row.start_t) + CLIP_PADDING, 3),
        },
    }


def _apply(row: EventRow, event: Event) -> None:
    row.severity = event.severity
    row.summary = event.summary
    row.track_local_ids = list(event.track_ids)
    row.details = dict(event.details)
    row.end_t = event.end_t
    row.end_at = event.end_at
    row.state = "open" if event.end_t is None else "closed"


def save_rules_output(
    store: Store,
    session: Session,
    output: RulesOutput,
    *,
    camera_id: int,
    source_id: int | None,
) -> list[tuple[EventRow, str]]:
    """Store events (with snapshots) and crossings in ``session``; the changes worth an alert.

    Returns each stored event row with its change (``start`` or ``end``) when
    the event notifies. The caller queues those alerts in the same session,
    so an event is never stored without its alerts (nor an alert queued for
    an event that was not stored); the store itself knows nothing of alerts.
    """
    notify: list[tuple[EventRow, str]] = []
    if not output:
        return notify
    written: dict[str, str] = {}
    for uid, image in output.snapshots.items():
        folder = source_media_dir(store.media, source_id) if source_id is not None else store.media
        target = folder / "events" / f"{uid}.jpg"
        write_jpeg(target, image, quality=85)
        written[uid] = target.relative_to(store.media).as_posix()
    rows: dict[str, EventRow] = {}
    for change in output.changes:
        ev = change.event
        row = rows.get(ev.uid) or session.scalar(select(EventRow).where(EventRow.uid == ev.uid))
        if row is None:
            row = EventRow(
                uid=ev.uid,
                camera_id=camera_id,
                source_id=source_id,
                type=ev.type,
                rule=ev.rule,
                start_t=ev.start_t,
                start_at=ev.start_at,
                zone=ev.zone,
                line=ev.line,
                snapshot=written.get(ev.uid),
            )
            session.add(row)
        elif ev.uid in written:
            row.snapshot = written[ev.uid]
        _apply(row, ev)
        session.flush()
        rows[ev.uid] = row
        if ev.notify and change.kind in ("start", "end"):
            notify.append((row, change.kind))
    for c in output.crossings:
        session.add(
            LineCrossingRow(
                camera_id=camera_id,
                source_id=source_id,
                line=c.line,
                direction=c.direction,
                label=c.label,
                track_local_id=c.track_id,
                t=c.t,
                at=c.at,
            )
        )
    return notify


@dataclass(frozen=True)
class EventView:
    """An event as listed to users, with its camera's name and the tracks' store ids."""

    row: EventRow
    camera: str
    track_ids: list[int]
    source: str | None


def list_events(
    store: Store,
    *,
    cameras: Sequence[str] = (),
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    unacknowledged: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[EventView]:
    """Events newest first; unknown camera names raise NotFoundError."""
    from camsight.store.models import Track

    with store.session() as session:
        cam_ids = [require_camera(session, name).id for name in cameras]
        q = select(EventRow, Camera.name, Source.uri).join(Camera, Camera.id == EventRow.camera_id)
        q = q.outerjoin(Source, Source.id == EventRow.source_id)
        q = _event_filters(q, cam_ids, types, since, until, unacknowledged)
        q = q.order_by(EventRow.start_at.desc().nulls_last(), EventRow.id.desc()).limit(limit).offset(offset)
        found = session.execute(q).all()
        pairs = {
            (r.source_id, lid) for r, _, _ in found if r.source_id is not None for lid in r.track_local_ids
        }
        ids: dict[tuple[int, int], int] = {}
        if pairs:
            sources = {s for s, _ in pairs}
            for tid, sid, lid in session.execute(
                select(Track.id, Track.source_id, Track.local_id).where(Track.source_id.in_(sources))
            ):
                if (sid, lid) in pairs:
                    ids[(sid, lid)] = tid
        return [
            EventView(
                row=r,
                camera=cam,
                track_ids=[ids[(r.source_id, lid)] for lid in r.track_local_ids if (r.source_id, lid) in ids],
                source=uri,
            )
            for r, cam, uri in found
        ]


def _event_filters(
    q: Any,
    cam_ids: Sequence[int],
    types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    unacknowledged: bool,
) -> Any:
    """The filters of :func:`list_events` and :func:`count_events`, on a query over events."""
    if cam_ids:
        q = q.where(EventRow.camera_id.in_(list(cam_ids)))
    if types:
        q = q.where(EventRow.type.in_(list(types)))
    if since is not None:
        q = q.where(func.coalesce(EventRow.end_at, EventRow.start_at) >= since)
    if until is not None:
        q = q.where(EventRow.start_at <= until)
    if unacknowledged:
        q = q.where(EventRow.acknowledged_at.is_(None))
    return q


def count_events(
    store: Store,
    *,
    cameras: Sequence[str] = (),
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    unacknowledged: bool = False,
) -> int:
    """How many events :func:`list_events` would list with these filters and no limit."""
    with store.session() as session:
        cam_ids = [require_camera(session, name).id for name in cameras]
        q = _event_filters(select(func.count(EventRow.id)), cam_ids, types, since, until, unacknowledged)
        return int(session.scalar(q) or 0)


def acknowledged_uids(store: Store, uids: Iterable[str]) -> set[str]:
    """Which of the events with these uids someone has acknowledged (a running source's open ones)."""
    wanted = list(uids)
    if not wanted:
        return set()
    with store.session() as session:
        rows = session.scalars(
            select(EventRow.uid).where(EventRow.uid.in_(wanted), EventRow.acknowledged_at.is_not(None))
        )
        return set(rows)


def acknowledge(store: Store, event_ids: Sequence[int], by: str) -> list[int]:
    """Mark events acknowledged by ``by``; returns those that were not already. Unknown ids raise."""
    with store.session() as session:
        known = set(session.scalars(select(EventRow.id).where(EventRow.id.in_(list(event_ids)))))
        missing = [i for i in event_ids if i not in known]
        if missing:
            raise NotFoundError(f"no event with id {missing[0]}")
        fresh = list(
            session.scalars(
                select(EventRow.id).where(
                    EventRow.id.in_(list(event_ids)), EventRow.acknowledged_at.is_(None)
                )
            )
        )
        if fresh:
            session.execute(
                update(EventRow)
                .where(EventRow.id.in_(fresh))
                .values(acknowledged_at=utcnow(), acknowledged_by=by)
            )
        return fresh


@dataclass(frozen=True)
class CountBucket:
    camera: str
    line: str
    start: datetime | None
    ins: int
    outs: int


def line_counts(
    store: Store,
    *,
    cameras: Sequence[str] = (),
    lines: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    every: timedelta | None = None,
) -> list[CountBucket]:
    """In/out counts per camera and line, in buckets of ``every`` (one bucket per line without it)."""
    with store.session() as session:
        cam_ids = [require_camera(session, name).id for name in cameras]
        q = select(
            Camera.name,
            LineCrossingRow.line,
            LineCrossingRow.direction,
            LineCrossingRow.at,
            LineCrossingRow.t,
        )
        q = q.join(Camera, Camera.id == LineCrossingRow.camera_id)
        if cam_ids:
            q = q.where(LineCrossingRow.camera_id.in_(cam_ids))
        if lines:
            q = q.where(LineCrossingRow.line.in_(list(lines)))
        if since is not None:
            q = q.where(LineCrossingRow.at >= since)
        if until is not None:
            q = q.where(LineCrossingRow.at <= until)
        rows = session.execute(q.order_by(LineCrossingRow.at, LineCrossingRow.t)).all()
    buckets: dict[tuple[str, str, datetime | None], list[int]] = {}
    for cam, line, direction, at, _t in rows:
        key_at = None
        if every is not None and at is not None:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            key_at = epoch + every * ((at - epoch) // every)
        counts = buckets.setdefault((cam, line, key_at), [0, 0])
        counts[0 if direction == "in" else 1] += 1
    return [CountBucket(cam, line, at, i, o) for (cam, line, at), (i, o) in buckets.items()]
