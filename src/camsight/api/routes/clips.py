"""Clip playback and export of tracks and events (permission ``view_clips``; downloads also ``export``).

The web UI asks ``/playback`` for where the footage is and the boxes to draw,
then points a ``<video>`` at ``clip_url`` (an MP4 served with HTTP ranges, so
the user can seek). Making a clip takes a few seconds the first time (it is
decoded, masked and encoded again); after that it comes from the cache in
``media/clips``. Views are audited as ``clip.view``, downloads as ``export``,
once per viewing: range requests after the first (seeking) are not.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from camsight.api import remote
from camsight.api.deps import RowId, StoreDep, client_ip, require
from camsight.api.errors import ApiError
from camsight.api.routes.events import load_event
from camsight.api.routes.tracks import load_track
from camsight.api.schemas import EventPlaybackOut, TrackPlaybackOut, errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.config import Config
from camsight.errors import ConfigError
from camsight.media.clip import ClipError
from camsight.media.clip_cache import cached_clip
from camsight.media.track_clip import (
    MAX_CLIP_SECONDS,
    TRACK_PADDING,
    ClipInfo,
    ClipWindow,
    Footage,
    FootageUnavailable,
    clip_window,
)
from camsight.paths import recordings_dir
from camsight.store.db import Store
from camsight.store.events import CLIP_PADDING
from camsight.store.models import EventRow, ObservationRow, Source, Track
from camsight.timeutil import aware

log = logging.getLogger(__name__)

router = APIRouter(tags=["clips"])
ClipViewer = Annotated[Principal, Depends(require(Permission.VIEW_CLIPS))]
Download = Annotated[
    bool, Query(description="Send as a file to save (needs the export permission); audited as an export.")
]
#: Boxes sent at most per playback (a long track at 30 fps has thousands of observations).
MAX_BOXES = 2000
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class _Subject:
    """What a clip is of: a track or an event, its camera, its footage and its span."""

    kind: str  # "track" or "event"
    id: int
    camera: str
    footage: Footage
    window: ClipWindow
    #: The track's or event's own span, in source seconds (end None: still open).
    start_t: float
    end_t: float | None
    #: The analysed frame size, which observation boxes are measured in.
    frame_size: tuple[int, int] | None
    source_id: int | None
    track_ids: list[int]

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.id}"

    @property
    def url(self) -> str:
        return f"/api/v1/{self.kind}s/{self.id}/clip"


def _footage(camera: str, source: Source | None, anchor: datetime | None) -> Footage:
    """Where the footage is: the indexed file, or (live sessions) the recordings from ``anchor``."""
    if source is None:
        return Footage(camera=camera, wallclock_start=anchor)
    live = source.fingerprint.startswith("live:")
    # A live session's uri is the camera URL (even when that is a local file played as a camera):
    # its source seconds follow the session, not the file, so only recordings can show it.
    file = None if live or "://" in source.uri else Path(source.uri)
    return Footage(
        camera=camera,
        file=file,
        fingerprint=None if live else source.fingerprint,
        wallclock_start=source.wallclock_start or anchor,
    )


def _track_subject(store: Store, principal: Principal, track_id: int) -> tuple[_Subject, Track]:
    with store.sessions() as session:
        track, camera, source = load_track(session, principal, track_id)
    return _subject_of_track(track, camera, source), track


def track_subject_of(store: Store, track_id: int) -> _Subject:
    """What a track's clip is of, for another node asking (no user: that node checked the caller)."""
    with store.sessions() as session:
        return _subject_of_track(*load_track(session, None, track_id))


def _subject_of_track(track: Track, camera: str, source: Source) -> _Subject:
    return _Subject(
        kind="track",
        id=track.id,
        camera=camera,
        footage=_footage(camera, source, None),
        window=clip_window(track.start_t, track.end_t, padding=TRACK_PADDING),
        start_t=track.start_t,
        end_t=track.end_t,
        frame_size=(source.width, source.height),
        source_id=source.id,
        track_ids=[track.id],
    )


def _event_subject(store: Store, principal: Principal, event_id: int) -> tuple[_Subject, Any]:
    row, camera, _uri = load_event(store, principal, event_id)
    return event_subject(store, row, camera), row


def event_subject(store: Store, row: EventRow, camera: str) -> _Subject:
    """What an event's clip is of (its footage, window and tracks), the caller's access already checked."""
    source: Source | None = None
    track_ids: list[int] = []
    with store.sessions() as session:
        if row.source_id is not None:
            source = session.get(Source, row.source_id)
            if row.track_local_ids:
                track_ids = list(
                    session.execute(
                        select(Track.id).where(
                            Track.source_id == row.source_id,
                            Track.local_id.in_([i for i in row.track_local_ids if isinstance(i, int)][:1000]),
                        )
                    ).scalars()
                )
    anchor = None
    if row.start_at is not None:
        start_at = aware(row.start_at)
        anchor = start_at - timedelta(seconds=row.start_t)
    subject = _Subject(
        kind="event",
        id=row.id,
        camera=camera,
        footage=_footage(camera, source, anchor),
        window=clip_window(row.start_t, row.end_t, padding=CLIP_PADDING),
        start_t=row.start_t,
        end_t=row.end_t,
        frame_size=(source.width, source.height) if source is not None else None,
        source_id=row.source_id,
        track_ids=sorted(track_ids),
    )
    return subject


def _clip(request: Request, store: Store, subject: _Subject) -> ClipInfo:
    """The subject's clip: made here, or fetched from the node that holds its footage (503 when that
    node is down)."""
    node = remote.holder(request, store, subject.source_id, subject.camera)
    if node is None:
        return local_clip(request, store, subject)
    return remote.remote_clip(
        request,
        store,
        node,
        kind=subject.kind,
        subject_id=subject.id,
        footage=subject.footage,
        window=subject.window,
        camera_config=request.app.state.config.camera(subject.camera),
    )


def local_clip(request: Request, store: Store, subject: _Subject) -> ClipInfo:
    """The subject's clip from this node's footage (cached, or made now); errors become clear 4xx/503
    answers, never a 500."""
    config: Config = request.app.state.config
    what = f"{subject.kind} {subject.id}"
    try:
        return cached_clip(
            store,
            subject.footage,
            subject.window,
            name=subject.name,
            camera_config=config.camera(subject.camera),
            recordings_root=recordings_dir(store.root, config.storage.recordings),
        )
    except FootageUnavailable as exc:
        log.info("footage unavailable", extra={"subject": subject.name, "error": str(exc)})
        raise ApiError(404, f"footage for {what} is no longer available ({exc.reason})") from None
    except ConfigError as exc:
        # Withheld rather than shown without the camera's privacy masks.
        log.warning("clip withheld: masks do not fit", extra={"subject": subject.name, "error": str(exc)})
        raise ApiError(
            409,
            f"the clip of {what} is withheld: camera {subject.camera!r}'s privacy masks do not fit its "
            "footage; an admin must correct them",
            code="masks_do_not_fit",
        ) from None
    except (ClipError, OSError) as exc:
        log.error("cannot make a clip", extra={"subject": subject.name, "error": str(exc)})
        raise ApiError(503, f"the clip of {what} cannot be made right now; try again later") from None


def _boxes(store: Store, subject: _Subject, clip: ClipInfo) -> list[dict[str, Any]]:
    """The subject's tracks' boxes inside the clip, in clip seconds, normalised to 0..1, thinned."""
    if not subject.track_ids or subject.frame_size is None:
        return []
    w, h = subject.frame_size
    if not w or not h:
        return []
    lo, hi = clip.start_t - 1e-3, clip.start_t + clip.duration + 1e-3
    with store.sessions() as session:
        rows = session.execute(
            select(
                ObservationRow.track_id,
                ObservationRow.t,
                ObservationRow.x1,
                ObservationRow.y1,
                ObservationRow.x2,
                ObservationRow.y2,
            )
            .where(ObservationRow.track_id.in_(subject.track_ids), ObservationRow.t.between(lo, hi))
            .order_by(ObservationRow.t, ObservationRow.track_id, ObservationRow.frame)
        ).all()
    if len(rows) > MAX_BOXES:
        # Evenly spaced, first and last kept: the UI interpolates between boxes anyway.
        step = (len(rows) - 1) / (MAX_BOXES - 1)
        rows = [rows[round(i * step)] for i in range(MAX_BOXES)]

    def norm(value: float, size: int) -> float:
        return round(min(1.0, max(0.0, value / size)), 4) if math.isfinite(value) else 0.0

    out = []
    for track_id, t, x1, y1, x2, y2 in rows:
        item: dict[str, Any] = {
            "t": round(max(0.0, t - clip.start_t), 3),
            "box": [norm(x1, w), norm(y1, h), norm(x2, w), norm(y2, h)],
        }
        if subject.kind == "event":
            item["track_id"] = track_id
        out.append(item)
    return out


def _playback(store: Store, subject: _Subject, clip: ClipInfo) -> dict[str, Any]:
    wall0 = subject.footage.wallclock_start
    recorded = None
    if wall0 is not None:
        wall0 = aware(wall0)
        recorded = (wall0 + timedelta(seconds=clip.start_t)).astimezone(UTC).isoformat()
    end_t = subject.end_t if subject.end_t is not None else subject.start_t
    return {
        "camera": subject.camera,
        "clip_url": subject.url,
        "download_url": f"{subject.url}?download=true",
        "clip_start_t": round(clip.start_t, 3),
        "offset": round(max(0.0, subject.start_t - clip.start_t), 3),
        "end_offset": round(min(clip.duration, max(0.0, end_t - clip.start_t)), 3),
        "duration": round(clip.duration, 3),
        "max_duration": MAX_CLIP_SECONDS,
        "truncated": subject.window.truncated,
        "width": clip.width,
        "height": clip.height,
        "masked": clip.masked,
        "recorded_start": recorded,
        "boxes": _boxes(store, subject, clip),
    }


def _check_export(principal: Principal, download: bool) -> None:
    # Before the id is looked up, like ``require``: the answer says nothing about the id.
    if download and not principal.can(Permission.EXPORT):
        raise ApiError(403, f"your role ({principal.user.role}) may not export")


def _starts_at_zero(range_header: str | None) -> bool:
    """Whether a request begins a viewing: no Range, or one starting at byte 0 (seeks start later)."""
    if range_header is None:
        return True
    units, _, spec = range_header.partition("=")
    first = spec.split(",")[0].split("-")[0].strip()
    return units.strip().lower() == "bytes" and first.isdigit() and int(first) == 0


def _check_range(header: str | None, size: int) -> None:
    """Answer a bad Range with the API's JSON error (Starlette would answer in plain text).

    Uses Starlette's own parser, so what passes here is exactly what FileResponse serves.
    """
    if header is None:
        return
    try:
        FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise ApiError(400, f"bad Range header: {exc.content or 'malformed'}") from None
    except RangeNotSatisfiable:
        raise ApiError(
            416,
            f"the range lies outside the clip ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


def _filename(subject: _Subject, clip: ClipInfo) -> str:
    camera = _SAFE.sub("_", subject.camera).strip("._-")[:48] or "camera"
    when = ""
    if subject.footage.wallclock_start is not None:
        wall0 = subject.footage.wallclock_start
        wall0 = aware(wall0)
        when = "-" + (wall0 + timedelta(seconds=clip.start_t)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"camsight-{camera}-{subject.kind}-{subject.id}{when}.mp4"


def serve_clip(
    request: Request,
    store: Store,
    actor: audit.Actor,
    subject: _Subject,
    download: bool,
    *,
    audit_extra: dict[str, Any] | None = None,
) -> FileResponse:
    """The subject's clip as MP4 (Range supported).

    A viewing is audited as ``actor``'s, its detail extended by ``audit_extra``.
    """
    clip = _clip(request, store, subject)
    # A HEAD (a player or download manager asking the size) shows no footage: not a viewing.
    if request.method != "HEAD" and _starts_at_zero(request.headers.get("range")):
        detail: dict[str, Any] = {f"{subject.kind}_id": subject.id, "start_t": round(clip.start_t, 3)}
        detail["duration"] = round(clip.duration, 3)
        detail.update(audit_extra or {})
        action = audit.Action.EXPORT if download else audit.Action.CLIP_VIEW
        audit.record(store, actor, action, target=subject.camera, detail=detail)
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    try:
        stat = clip.path.stat()
    except OSError:
        # Evicted between making and sending: rare, and a retry makes it again.
        raise ApiError(503, f"the clip of {subject.kind} {subject.id} was just removed; try again") from None
    _check_range(request.headers.get("range"), stat.st_size)
    if download:
        return FileResponse(
            clip.path,
            media_type="video/mp4",
            headers=headers,
            filename=_filename(subject, clip),
            stat_result=stat,
        )
    return FileResponse(clip.path, media_type="video/mp4", headers=headers, stat_result=stat)


_CLIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The clip (H.264 MP4)."},
    206: {"content": {"video/mp4": {}}, "description": "Part of the clip (HTTP Range)."},
}


@router.get(
    "/tracks/{track_id}/playback",
    response_model=TrackPlaybackOut,
    response_model_exclude_unset=True,
    responses=errors(404, 409, 503),
)
def track_playback(
    request: Request, track_id: RowId, principal: ClipViewer, store: StoreDep
) -> dict[str, Any]:
    """Where to play a track: the clip's URL, where in it the track is, and its boxes to draw.

    Times are seconds into the clip; boxes are (x1, y1, x2, y2) as fractions of
    the picture. The first call makes the clip (a few seconds); later ones are quick.
    """
    subject, track = _track_subject(store, principal, track_id)
    clip = _clip(request, store, subject)
    return {"track_id": track.id, "label": track.label, **_playback(store, subject, clip)}


@router.get(
    "/tracks/{track_id}/clip",
    response_class=FileResponse,
    responses=errors(404, 409, 416, 503) | _CLIP_RESPONSES,
)
def track_clip(
    request: Request, track_id: RowId, principal: ClipViewer, store: StoreDep, download: Download = False
) -> FileResponse:
    """The track's footage from 2 s before to 2 s after it (at most 120 s) as MP4; supports Range."""
    _check_export(principal, download)
    subject, _track = _track_subject(store, principal, track_id)
    return serve_clip(request, store, principal.actor(client_ip(request)), subject, download)


@router.head(
    "/tracks/{track_id}/clip",
    response_class=FileResponse,
    responses=errors(404, 409, 416, 503) | _CLIP_RESPONSES,
)
def track_clip_head(
    request: Request, track_id: RowId, principal: ClipViewer, store: StoreDep, download: Download = False
) -> FileResponse:
    """The headers of the track's clip (size, ``Accept-Ranges``) without the footage; not audited."""
    return track_clip(request, track_id, principal, store, download)


@router.get(
    "/events/{event_id}/playback",
    response_model=EventPlaybackOut,
    response_model_exclude_unset=True,
    responses=errors(404, 409, 503),
)
def event_playback(
    request: Request, event_id: RowId, principal: ClipViewer, store: StoreDep
) -> dict[str, Any]:
    """Where to play an event: its clip's URL, where in it the event is, and its tracks' boxes."""
    subject, row = _event_subject(store, principal, event_id)
    clip = _clip(request, store, subject)
    return {
        "event_id": row.id,
        "type": row.type,
        "summary": row.summary,
        "track_ids": subject.track_ids,
        **_playback(store, subject, clip),
    }


@router.get(
    "/events/{event_id}/clip",
    response_class=FileResponse,
    responses=errors(404, 409, 416, 503) | _CLIP_RESPONSES,
)
def event_clip(
    request: Request, event_id: RowId, principal: ClipViewer, store: StoreDep, download: Download = False
) -> FileResponse:
    """The event's footage from 5 s before to 5 s after it (at most 120 s) as MP4; supports Range."""
    _check_export(principal, download)
    subject, _row = _event_subject(store, principal, event_id)
    return serve_clip(request, store, principal.actor(client_ip(request)), subject, download)


@router.head(
    "/events/{event_id}/clip",
    response_class=FileResponse,
    responses=errors(404, 409, 416, 503) | _CLIP_RESPONSES,
)
def event_clip_head(
    request: Request, event_id: RowId, principal: ClipViewer, store: StoreDep, download: Download = False
) -> FileResponse:
    """The headers of the event's clip (size, ``Accept-Ranges``) without the footage; not audited."""
    return event_clip(request, event_id, principal, store, download)
