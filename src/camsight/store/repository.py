"""Reading and writing cameras, sources and tracks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.orm import Session

from camsight.errors import NotFoundError
from camsight.records.tracks import TrackRecord
from camsight.store.db import Store
from camsight.store.media import remove_source_media, source_media_dir, write_jpeg
from camsight.store.models import (
    Camera,
    CameraStatusRow,
    Meta,
    ObservationRow,
    Source,
    Thumbnail,
    Track,
    TrackEmbedding,
    utcnow,
)
from camsight.store.vectors import VectorColumn, appearance_column, embedding_column, ensure_indexes

FINAL = ("complete", "damaged")
REVISION_KEY = "tracks_revision"
#: The last revision that did more than add tracks (search indexes must rebuild past it).
RESET_KEY = "tracks_reset_revision"


#: The PostgreSQL advisory lock that orders track writers (any constant unique to camsight).
TRACKS_LOCK_KEY = 0x63616D5F74726B73  # "cam_trks"


def lock_tracks(session: Session) -> None:
    """Make other writers of tracks wait until this transaction ends (PostgreSQL; SQLite needs nothing).

    Search indexes read new tracks by id ("above the highest id seen"). On PostgreSQL ids
    come from a sequence and two transactions can commit them out of order: a reader
    between the commits would step over the late, lower id. Taken before the first track
    is inserted, this lock makes ids rise in commit order, as SQLite's single writer does;
    it also keeps two writers from both reading revision N and both writing N + 1.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TRACKS_LOCK_KEY})


def bump_revision(session: Session, *, appended_only: bool = False) -> None:
    """Mark that tracks changed, so search indexes built earlier catch up.

    ``appended_only``: this change only inserted new tracks (nothing removed or
    altered), so an index may append them instead of rebuilding. Any other
    change, and the first one recorded in a store, is a reset.
    """
    lock_tracks(session)  # re-entrant: a no-op wait when save_tracks already holds it
    row = session.get(Meta, REVISION_KEY)
    revision = 1 if row is None else int(row.value) + 1
    if row is None:
        session.add(Meta(key=REVISION_KEY, value=str(revision)))
    else:
        row.value = str(revision)
    reset = session.get(Meta, RESET_KEY)
    if reset is None:
        session.add(Meta(key=RESET_KEY, value=str(revision)))
    elif not appended_only:
        reset.value = str(revision)


_READ_REVISION = select(Meta.value).where(Meta.key == REVISION_KEY)


def tracks_revision(db: Session | Connection) -> int:
    """The tracks revision (0 before anything was stored), on a session or a plain connection."""
    # A column, not the Meta object: read on every search (SearchEngine's IndexCache.get).
    value = db.scalar(_READ_REVISION)
    return int(value) if value is not None else 0


def tracks_state(session: Session) -> tuple[int, int | None]:
    """(tracks revision, last reset revision); the reset is None in a store that never recorded one."""
    values = dict(
        session.execute(select(Meta.key, Meta.value).where(Meta.key.in_((REVISION_KEY, RESET_KEY)))).all()
    )
    reset = values.get(RESET_KEY)
    return int(values.get(REVISION_KEY, 0)), None if reset is None else int(reset)


def camera_by_name(session: Session, name: str) -> Camera | None:
    return session.scalar(select(Camera).where(Camera.name == name))


def require_camera(session: Session, name: str) -> Camera:
    camera = camera_by_name(session, name)
    if camera is None:
        known = session.scalars(select(Camera.name).order_by(Camera.name)).all()
        hint = f"known cameras: {', '.join(known)}" if known else "nothing has been indexed yet"
        raise NotFoundError(f"no camera named {name!r} ({hint})")
    return camera


def get_or_create_camera(session: Session, name: str, kind: str = "file") -> Camera:
    camera = camera_by_name(session, name)
    if camera is None:
        camera = Camera(name=name, kind=kind)
        session.add(camera)
        session.flush()
    return camera


@dataclass(frozen=True)
class SourcePlan:
    """What to do with a file: index it (``source_id``) or skip it (``reason``)."""

    source_id: int | None
    camera_id: int
    reason: str | None = None
    replaced: bool = False
    #: When the recording started, as stored for the source (None: unknown).
    wallclock_start: datetime | None = None


def plan_source(
    store: Store,
    *,
    camera: str,
    uri: str,
    fingerprint: str,
    settings_key: str,
    settings: dict,
    width: int,
    height: int,
    native_fps: float,
    duration: float | None,
    wallclock_start: datetime | None = None,
    default_start: datetime | None = None,
    force: bool = False,
) -> SourcePlan:
    """Register a file for indexing, or say why it needs none.

    The same file (by content) on the same camera is one source: indexed
    with the same settings it is skipped; interrupted, or indexed with other
    settings, or with ``force``, its old tracks are removed and it is done
    again. Removal and re-registration happen in one transaction.

    ``wallclock_start`` is a start time the user gave. Without one, a file
    indexed again keeps the start time stored for it (a time given once
    must not move when a zone changes), and a new file gets ``default_start``.
    """
    replaced = False
    with store.session() as session:
        cam = get_or_create_camera(session, camera)
        old = session.scalar(
            select(Source).where(Source.camera_id == cam.id, Source.fingerprint == fingerprint)
        )
        if old is not None:
            if old.status in FINAL and old.settings_key == settings_key and not force:
                return SourcePlan(None, cam.id, reason=f"already indexed ({old.status})")
            replaced = True
            old_id = old.id
            if wallclock_start is None:
                wallclock_start = old.wallclock_start
            session.execute(delete(Source).where(Source.id == old_id))
            bump_revision(session)
            session.flush()
        src = Source(
            camera_id=cam.id,
            uri=uri,
            fingerprint=fingerprint,
            status="indexing",
            settings_key=settings_key,
            settings=settings,
            width=width,
            height=height,
            native_fps=native_fps,
            duration=duration,
            wallclock_start=wallclock_start or default_start,
            node=store.node,
        )
        session.add(src)
        session.flush()
        plan = SourcePlan(src.id, cam.id, replaced=replaced, wallclock_start=src.wallclock_start)
    if replaced:
        remove_source_media(store.media, old_id)
    # A crash between registering and the first write can leave files of a
    # deleted source with a reused id; start from an empty folder.
    remove_source_media(store.media, plan.source_id)  # type: ignore[arg-type]
    return plan


def save_tracks(
    store: Store, source_id: int, camera_id: int, records: Iterable[TrackRecord], progress: dict
) -> int:
    """Write finished tracks, their observations and thumbnails in one transaction.

    Thumbnails are written first; if the transaction then fails they are
    orphans in the source's folder, which a re-run clears.
    """
    records = list(records)
    ensure_indexes(store.engine, _vector_kinds(records))
    media_dir = source_media_dir(store.media, source_id)
    thumbs: dict[int, list[dict]] = {}
    for rec in records:
        rows = []
        for rank, crop in enumerate(rec.crops):
            rel = Path("sources") / str(source_id) / f"t{rec.local_id:06d}_{rank}.jpg"
            write_jpeg(media_dir / rel.name, crop.image)
            x1, y1, x2, y2 = crop.box
            rows.append(
                dict(
                    rank=rank,
                    frame=crop.frame,
                    t=crop.t,
                    x1=x1,
                    y1=y1,
                    x2=x2,
                    y2=y2,
                    quality=crop.quality,
                    path=rel.as_posix(),
                )
            )
        thumbs[rec.local_id] = rows
    with store.session() as session:
        if records:
            lock_tracks(session)
        src = session.get(Source, source_id)
        clock = src.wallclock_start if src is not None else None
        for rec in records:
            k = rec.kinematics
            attrs = rec.attributes
            track = Track(
                source_id=source_id,
                camera_id=camera_id,
                local_id=rec.local_id,
                label=rec.label,
                start_t=rec.start_t,
                end_t=rec.end_t,
                first_frame=rec.first_frame,
                last_frame=rec.last_frame,
                num_observations=len(rec.observations),
                confidence=rec.confidence,
                speed_px_s=k.speed_px_s,
                speed_bh_s=k.speed_bh_s,
                max_speed_px_s=k.max_speed_px_s,
                direction_deg=k.direction_deg,
                heading=k.heading,
                displacement_px=k.displacement_px,
                path_px=k.path_px,
                carrier_local_id=rec.carrier_local_id,
                carried=rec.carried,
                labels_seen=rec.labels_seen,
                appearance=None if rec.appearance is None else rec.appearance.astype("<f4").tobytes(),
                start_at=None if clock is None else clock + timedelta(seconds=rec.start_t),
                end_at=None if clock is None else clock + timedelta(seconds=rec.end_t),
                attributes=None if attrs is None else attrs.to_dict(),
                facets=None if attrs is None else attrs.facet_vector().tobytes(),
            )
            session.add(track)
            session.flush()
            session.execute(
                insert(ObservationRow),
                [
                    dict(
                        track_id=track.id,
                        frame=o.frame,
                        t=o.t,
                        x1=o.box[0],
                        y1=o.box[1],
                        x2=o.box[2],
                        y2=o.box[3],
                        confidence=o.confidence,
                        detected=o.detected,
                    )
                    for o in rec.observations
                ],
            )
            if rec.embedding is not None and rec.embedding_model:
                session.add(
                    TrackEmbedding(
                        track_id=track.id,
                        model=rec.embedding_model,
                        vector=rec.embedding.astype("<f4").tobytes(),
                    )
                )
            if rec.reid is not None and rec.reid_model and rec.reid_model != rec.embedding_model:
                vector = rec.reid.astype("<f4").tobytes()
                session.add(TrackEmbedding(track_id=track.id, model=rec.reid_model, vector=vector))
            if thumbs[rec.local_id]:
                session.execute(
                    insert(Thumbnail), [dict(track_id=track.id, **r) for r in thumbs[rec.local_id]]
                )
        _update_source(session, source_id, progress)
        if records:
            bump_revision(session, appended_only=True)
    return len(records)


def _vector_kinds(records: list[TrackRecord]) -> set[tuple[VectorColumn, int]]:
    """The (vector kind, dimension) pairs ``records`` store: each needs its index on PostgreSQL."""
    kinds: set[tuple[VectorColumn, int]] = set()
    for rec in records:
        if rec.appearance is not None:
            kinds.add((appearance_column(), len(rec.appearance)))
        if rec.embedding is not None and rec.embedding_model:
            kinds.add((embedding_column(rec.embedding_model), len(rec.embedding)))
        if rec.reid is not None and rec.reid_model:
            kinds.add((embedding_column(rec.reid_model), len(rec.reid)))
    return kinds


def _update_source(session: Session, source_id: int, fields: dict) -> None:
    src = session.get(Source, source_id)
    if src is None:
        raise NotFoundError(f"source {source_id} vanished while indexing")
    for key, value in fields.items():
        setattr(src, key, value)


def finish_source(store: Store, source_id: int, status: str, fields: dict, error: str | None) -> None:
    with store.session() as session:
        _update_source(
            session, source_id, {**fields, "status": status, "error": error, "finished_at": utcnow()}
        )


def discard_source(store: Store, source_id: int) -> None:
    """Remove a source that yielded nothing usable, rows and files."""
    with store.session() as session:
        session.execute(delete(Source).where(Source.id == source_id))
        bump_revision(session)
    remove_source_media(store.media, source_id)


@dataclass(frozen=True)
class TrackSummary:
    """A track as listed to users (CLI ``tracks``, later the API)."""

    id: int
    camera: str
    source: str
    source_status: str
    local_id: int
    label: str
    start: float
    end: float
    first_frame: int
    last_frame: int
    observations: int
    confidence: float
    heading: str
    direction_deg: float | None
    speed_px_s: float
    carried: dict
    carrier_track: int | None
    thumbnail: str | None


def _tracks_filter(
    session: Session, query: Any, camera: str | None, label: str | None, scope: Collection[str] | None
) -> Any:
    query = query.join(Source, Track.source_id == Source.id).join(Camera, Track.camera_id == Camera.id)
    if camera is not None:
        query = query.where(Track.camera_id == require_camera(session, camera).id)
    if label is not None:
        query = query.where(Track.label == label)
    if scope is not None:
        query = query.where(Camera.name.in_(list(scope)))
    return query


def count_tracks_matching(
    store: Store, camera: str | None = None, label: str | None = None, scope: Collection[str] | None = None
) -> int:
    """How many tracks :func:`list_tracks` would list without a limit."""
    with store.session() as session:
        query = _tracks_filter(session, select(func.count(Track.id)), camera, label, scope)
        return int(session.scalar(query) or 0)


def list_tracks(
    store: Store,
    camera: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    *,
    offset: int = 0,
    scope: Collection[str] | None = None,
) -> list[TrackSummary]:
    """Tracks by camera, source and time; ``scope`` limits them to these camera names."""
    with store.session() as session:
        query = _tracks_filter(
            session, select(Track, Camera.name, Source.uri, Source.status), camera, label, scope
        ).order_by(Camera.name, Source.id, Track.start_t, Track.local_id)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = session.execute(query).all()
        first_thumb = (
            dict(
                session.execute(
                    select(Thumbnail.track_id, Thumbnail.path).where(
                        Thumbnail.rank == 0, Thumbnail.track_id.in_([r[0].id for r in rows])
                    )
                ).all()
            )
            if rows
            else {}
        )
        carrier_ids = _carrier_ids(session, [r[0] for r in rows])
        return [
            TrackSummary(
                id=t.id,
                camera=cam,
                source=uri,
                source_status=status,
                local_id=t.local_id,
                label=t.label,
                start=round(t.start_t, 3),
                end=round(t.end_t, 3),
                first_frame=t.first_frame,
                last_frame=t.last_frame,
                observations=t.num_observations,
                confidence=round(t.confidence, 3),
                heading=t.heading,
                direction_deg=None if t.direction_deg is None else round(t.direction_deg, 1),
                speed_px_s=round(t.speed_px_s, 1),
                carried=_carried_ids(t, carrier_ids),
                carrier_track=carrier_ids.get((t.source_id, t.carrier_local_id)),
                thumbnail=str(store.media / first_thumb[t.id]) if t.id in first_thumb else None,
            )
            for t, cam, uri, status in rows
        ]


def _carrier_ids(session: Session, tracks: list[Track]) -> dict[tuple[int, int], int]:
    """Map (source, local id) -> track id for every track the listed ones refer to."""
    wanted = {(t.source_id, t.carrier_local_id) for t in tracks if t.carrier_local_id is not None}
    wanted |= {(t.source_id, v["track"]) for t in tracks for v in (t.carried or {}).values()}
    if not wanted:
        return {}
    sources = {s for s, _ in wanted}
    rows = session.execute(
        select(Track.source_id, Track.local_id, Track.id).where(Track.source_id.in_(sources))
    ).all()
    return {(s, lid): tid for s, lid, tid in rows if (s, lid) in wanted}


def _carried_ids(track: Track, ids: dict[tuple[int, int], int]) -> dict:
    return {
        label: {**info, "track": ids.get((track.source_id, info["track"]))}
        for label, info in (track.carried or {}).items()
    }


def sources_of_camera(session: Session, camera: Camera) -> list[Source]:
    return list(session.scalars(select(Source).where(Source.camera_id == camera.id).order_by(Source.id)))


def mot_rows(store: Store, camera: str, source: str | None = None) -> Iterator[tuple]:
    """(frame, track id, left, top, width, height, conf) for the person tracks of one video."""
    with store.session() as session:
        cam = require_camera(session, camera)
        sources = sources_of_camera(session, cam)
        if source is not None:
            sources = [s for s in sources if s.uri == source or Path(s.uri).name == source]
            if not sources:
                raise NotFoundError(f"camera {camera!r} has no indexed video {source!r}")
        if not sources:
            raise NotFoundError(f"camera {camera!r} has no indexed video")
        if len(sources) > 1:
            names = ", ".join(Path(s.uri).name for s in sources)
            raise NotFoundError(
                f"camera {camera!r} has {len(sources)} indexed videos ({names}): choose one with --source"
            )
        src = sources[0]
        rows = session.execute(
            select(
                ObservationRow.frame,
                Track.local_id,
                ObservationRow.x1,
                ObservationRow.y1,
                ObservationRow.x2,
                ObservationRow.y2,
                ObservationRow.confidence,
            )
            .join(Track, ObservationRow.track_id == Track.id)
            .where(Track.source_id == src.id, Track.label == "person")
            .order_by(ObservationRow.frame, Track.local_id)
        ).all()
    for frame, tid, x1, y1, x2, y2, conf in rows:
        yield frame, tid, x1, y1, x2 - x1, y2 - y1, conf


def count_tracks(store: Store, source_id: int) -> dict[str, int]:
    with store.session() as session:
        rows = session.execute(
            select(Track.label, func.count()).where(Track.source_id == source_id).group_by(Track.label)
        ).all()
    return {label: n for label, n in rows}


def camera_status(store: Store) -> list[tuple[str, CameraStatusRow | None]]:
    """Every camera with its latest health (None for cameras never run live)."""
    with store.session() as session:
        rows = session.execute(
            select(Camera.name, CameraStatusRow).outerjoin(
                CameraStatusRow, CameraStatusRow.camera_id == Camera.id
            )
        ).all()
        return [(name, row) for name, row in rows]
