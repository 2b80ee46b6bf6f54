"""Signed links from alerts: an event's snapshot and clip, opened without signing in.

The alert's receiver (an e-mail reader, a chat room, a webhook consumer) has
no camsight account; the link itself is the permission, for one event's
media and until it expires (see :mod:`camsight.alerts.links`). A link that
was altered, made for another event, or signed with another key is
answered 403 with the reason, and so is an expired one. Every viewing is
audited as ``link:<sink>`` (the channel the link was sent to), like a
signed-in user's viewing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from camsight.alerts.links import LinkError, event_path, load_key, verify
from camsight.api.deps import RowId, StoreDep, client_ip
from camsight.api.errors import ApiError
from camsight.api.routes.clips import event_subject, serve_clip
from camsight.api.routes.tracks import media_file
from camsight.api.schemas import errors
from camsight.auth import audit
from camsight.errors import ConfigError
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow

router = APIRouter(tags=["links"])
Exp = Annotated[str | None, Query(max_length=16, description="Expiry (Unix time), as signed.")]
Via = Annotated[str | None, Query(max_length=64, description="The alert sink the link was sent to.")]
Sig = Annotated[str | None, Query(max_length=64, description="Hex HMAC-SHA256 of path, expiry and sink.")]
_CLIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The clip (H.264 MP4)."},
    206: {"content": {"video/mp4": {}}, "description": "Part of the clip (HTTP Range)."},
}


def _key(request: Request, store: Store) -> bytes:
    # Read once per app: the file does not change while camsight runs (replacing it needs a restart).
    key = getattr(request.app.state, "link_key", None)
    if key is None:
        try:
            key = request.app.state.link_key = load_key(store.root)
        except ConfigError as exc:
            raise ApiError(503, f"signed links are unavailable: {exc}") from None
    return key


def _check(
    request: Request,
    store: Store,
    event_id: int,
    media: str,
    exp: str | None,
    via: str | None,
    sig: str | None,
) -> tuple[EventRow, str, dict[str, Any], audit.Actor]:
    """The event a valid link opens, its camera, the audit detail and actor; 403/404 otherwise."""
    try:
        expires, sink = verify(_key(request, store), event_path(event_id, media), exp, via, sig)
    except LinkError as exc:
        raise ApiError(403, str(exc), code=exc.code) from None
    with store.sessions() as session:
        found = session.execute(
            select(EventRow, Camera.name)
            .join(Camera, Camera.id == EventRow.camera_id)
            .where(EventRow.id == event_id)
        ).one_or_none()
    if found is None:
        raise ApiError(404, f"event {event_id} no longer exists")
    detail = {"event_id": event_id, "via": "signed_link", "link_expires": expires}
    return found[0], found[1], detail, audit.Actor(f"link:{sink}", client_ip(request))


@router.get(
    "/links/events/{event_id}/snapshot",
    response_class=FileResponse,
    responses=errors(403, 404, 503) | {200: {"content": {"image/jpeg": {}}, "description": "The snapshot."}},
)
def linked_snapshot(
    request: Request, event_id: RowId, store: StoreDep, exp: Exp = None, via: Via = None, sig: Sig = None
) -> FileResponse:
    """The event's snapshot (JPEG) through a signed link from an alert; audited as ``snapshot.view``."""
    row, camera, detail, actor = _check(request, store, event_id, "snapshot", exp, via, sig)
    if not row.snapshot:
        raise ApiError(404, f"event {event_id} has no snapshot")
    response = media_file(store, row.snapshot)
    audit.record(store, actor, audit.Action.SNAPSHOT_VIEW, target=camera, detail=detail)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get(
    "/links/events/{event_id}/clip",
    response_class=FileResponse,
    responses=errors(403, 404, 409, 416, 503) | _CLIP_RESPONSES,
)
def linked_clip(
    request: Request, event_id: RowId, store: StoreDep, exp: Exp = None, via: Via = None, sig: Sig = None
) -> FileResponse:
    """The event's footage (MP4, Range supported) through a signed link; audited as ``clip.view``."""
    row, camera, detail, actor = _check(request, store, event_id, "clip", exp, via, sig)
    subject = event_subject(store, row, camera)
    return serve_clip(request, store, actor, subject, False, audit_extra=detail)


@router.head(
    "/links/events/{event_id}/clip",
    response_class=FileResponse,
    responses=errors(403, 404, 409, 416, 503) | _CLIP_RESPONSES,
)
def linked_clip_head(
    request: Request, event_id: RowId, store: StoreDep, exp: Exp = None, via: Via = None, sig: Sig = None
) -> FileResponse:
    """The headers of the linked clip (size, ``Accept-Ranges``) without the footage; not audited."""
    return linked_clip(request, event_id, store, exp, via, sig)
