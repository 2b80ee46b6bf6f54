"""Events: list, one, acknowledge, snapshot (cameras are in :mod:`camsight.api.routes.cameras`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from camsight.api import remote
from camsight.api.deps import (
    PageDep,
    PageOut,
    RowId,
    StoreDep,
    can_see,
    client_ip,
    get_config,
    page_out,
    require,
    visible_camera,
    visible_camera_names,
)
from camsight.api.errors import ApiError
from camsight.api.routes.tracks import media_file
from camsight.api.schemas import AckOut, EventOut, PageOf, errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.errors import NotFoundError
from camsight.store import events as store_events
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow, Source, Track

router = APIRouter(tags=["events"])
EventViewer = Annotated[Principal, Depends(require(Permission.VIEW_EVENTS))]
Acknowledger = Annotated[Principal, Depends(require(Permission.ACKNOWLEDGE))]


def _event_out(row: EventRow, camera: str, source: str | None, track_ids: list[int]) -> dict[str, Any]:
    data = store_events.event_payload(row, camera, row.state, source)
    data.pop("schema", None)
    data.pop("kind", None)
    # The media path stays server-side: clients get a URL served by id.
    data.pop("snapshot", None)
    data["snapshot_url"] = f"/api/v1/events/{row.id}/snapshot" if row.snapshot else None
    data["track_ids"] = track_ids
    data["acknowledged_at"] = (
        store_events.aware(row.acknowledged_at).isoformat() if row.acknowledged_at else None
    )
    data["acknowledged_by"] = row.acknowledged_by
    return data


def load_event(store: Store, principal: Principal | None, event_id: int) -> tuple[EventRow, str, str | None]:
    """The event, its camera's name and its source's URI; 404 if missing or on a camera the caller
    cannot see. ``principal`` None: another node asks, which checked its caller already."""
    with store.sessions() as session:
        found = session.execute(
            select(EventRow, Camera.name, Source.uri)
            .join(Camera, Camera.id == EventRow.camera_id)
            .outerjoin(Source, Source.id == EventRow.source_id)
            .where(EventRow.id == event_id)
        ).one_or_none()
    if found is None or (principal is not None and not can_see(principal, found[1])):
        raise ApiError(404, f"no event with id {event_id}")
    return found[0], found[1], found[2]


def _track_ids(store: Store, row: EventRow) -> list[int]:
    if row.source_id is None or not row.track_local_ids:
        return []
    with store.sessions() as session:
        pairs = dict(
            session.execute(
                select(Track.local_id, Track.id).where(
                    Track.source_id == row.source_id, Track.local_id.in_(list(row.track_local_ids))
                )
            ).all()
        )
    return [pairs[i] for i in row.track_local_ids if i in pairs]


@router.get("/events", response_model=PageOf[EventOut], responses=errors(404))
def list_events(
    request: Request,
    principal: EventViewer,
    store: StoreDep,
    page: PageDep,
    camera: Annotated[list[str] | None, Query(max_length=50)] = None,
    event_type: Annotated[list[str] | None, Query(alias="type", max_length=20)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    unacknowledged: bool = False,
) -> PageOut:
    """Events of the caller's cameras, newest first."""
    if camera:
        for name in camera:
            visible_camera(store, principal, name, get_config(request))
        cameras = list(camera)
    else:
        cameras = visible_camera_names(store, principal)
        if principal.camera_scope() is not None and not cameras:
            return page_out([], 0, page)
        if principal.camera_scope() is None:
            cameras = []  # every camera: no filter at all
    types = [t for t in event_type or [] if t]
    since, until = store_events.aware(since), store_events.aware(until)
    try:
        views = store_events.list_events(
            store,
            cameras=cameras,
            types=types,
            since=since,
            until=until,
            unacknowledged=unacknowledged,
            limit=page.limit,
            offset=page.offset,
        )
        total = store_events.count_events(
            store, cameras=cameras, types=types, since=since, until=until, unacknowledged=unacknowledged
        )
    except NotFoundError:
        # Configured but nothing stored yet (checked above); the store's message would list cameras.
        return page_out([], 0, page)
    items = [_event_out(v.row, v.camera, v.source, v.track_ids) for v in views]
    return page_out(items, total, page)


@router.get("/events/{event_id}", response_model=EventOut, responses=errors(404))
def get_event(event_id: RowId, principal: EventViewer, store: StoreDep) -> dict[str, Any]:
    row, camera, source = load_event(store, principal, event_id)
    return _event_out(row, camera, source, _track_ids(store, row))


@router.post("/events/{event_id}/ack", response_model=AckOut, responses=errors(404))
def ack_event(request: Request, event_id: RowId, principal: Acknowledger, store: StoreDep) -> dict[str, Any]:
    """Acknowledge an event (operators and admins); audited. Acknowledging twice is harmless."""
    row, camera, _source = load_event(store, principal, event_id)
    fresh = store_events.acknowledge(store, [event_id], principal.name)
    if fresh:
        audit.record(
            store,
            principal.actor(client_ip(request)),
            audit.Action.EVENT_ACKNOWLEDGE,
            target=camera,
            detail={"event_id": event_id, "type": row.type},
        )
    row, camera, source = load_event(store, principal, event_id)
    return {"acknowledged": bool(fresh), "event": _event_out(row, camera, source, _track_ids(store, row))}


@router.get("/events/{event_id}/snapshot", response_class=FileResponse, responses=errors(404, 503))
def snapshot(request: Request, event_id: RowId, principal: EventViewer, store: StoreDep) -> Response:
    """The event's snapshot (JPEG)."""
    row, camera, _source = load_event(store, principal, event_id)
    if not row.snapshot:
        raise ApiError(404, f"event {event_id} has no snapshot")
    # Raised on another node: the snapshot is on that node (503 while it is down).
    node = remote.holder(request, store, row.source_id, camera)
    if node is not None:
        return remote.remote_media(request, store, node, row.snapshot, f"the snapshot of event {event_id}")
    return media_file(store, row.snapshot)
