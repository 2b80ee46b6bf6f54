"""Legal holds: keep a camera's footage (a time range, or an event's) past retention until released.

Whoever may export footage may hold it (operators and admins), on the cameras
they can see; a hold on a camera the caller cannot see answers like a missing
one. An operator releases the holds they placed; admins release any. Placing
and releasing are audited (``hold.place``, ``hold.release``); a released hold
stays listed with ``include_released=true``.

::

    POST /api/v1/holds {"camera": "gate", "start": "2026-11-20T18:00Z", "end": "2026-11-20T18:30Z",
                        "reason": "police request 2026-118"}
    POST /api/v1/holds {"event_id": 42, "reason": "insurance claim"}
    POST /api/v1/holds/7/release
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from camsight.api.deps import (
    PageDep,
    PageOut,
    RowId,
    StoreDep,
    can_see,
    client_ip,
    get_config,
    not_found_camera,
    page_out,
    require,
    visible_camera,
)
from camsight.api.errors import ApiError
from camsight.api.schemas import errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission, Role
from camsight.errors import NotFoundError
from camsight.media import holds
from camsight.store.db import Store
from camsight.timeutil import to_utc

router = APIRouter(tags=["holds"])
#: Holding footage keeps it from deletion, as exporting it does: the same people may.
Holder = Annotated[Principal, Depends(require(Permission.EXPORT))]


class HoldIn(BaseModel):
    """A hold on a camera's time range (``camera``, ``start``, ``end``) or on an event (``event_id``).

    Times are ISO 8601, UTC unless they carry an offset; no ``end``: no end.
    """

    model_config = ConfigDict(extra="forbid")

    camera: str | None = Field(default=None, min_length=1, max_length=128)
    start: datetime | None = None
    end: datetime | None = None
    event_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    reason: str = Field(min_length=1, max_length=holds.MAX_REASON)

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, when: datetime | None) -> datetime | None:
        if when is None:
            return None
        try:
            when = to_utc(when)
        except OverflowError:
            raise ValueError("the time is out of range") from None
        if not 1970 <= when.year <= 2200:
            raise ValueError("the time must be between the years 1970 and 2200")
        return when

    @model_validator(mode="after")
    def _one_kind(self) -> HoldIn:
        if self.event_id is not None:
            if self.camera is not None or self.start is not None or self.end is not None:
                raise ValueError("give either event_id, or camera and start (and end), not both")
        elif self.camera is None or self.start is None:
            raise ValueError("give camera and start (and end) for a time range, or event_id for an event")
        return self


def _scope(principal: Principal) -> list[str] | None:
    scope = principal.camera_scope()
    return sorted(scope) if scope is not None else None


def _visible_hold(store: Store, principal: Principal, hold_id: int) -> holds.LegalHold:
    hold = holds.get_hold(store, hold_id)
    if hold is None or not can_see(principal, hold.camera):
        # Another camera's hold answers exactly like a missing one.
        raise ApiError(404, f"no hold with id {hold_id}")
    return hold


@router.get("/holds", response_model=PageOut, responses=errors(404))
def list_holds(
    request: Request,
    principal: Holder,
    store: StoreDep,
    page: PageDep,
    camera: Annotated[list[str] | None, Query(max_length=50)] = None,
    include_released: bool = False,
) -> PageOut:
    """Legal holds of the caller's cameras, newest first; only active ones unless ``include_released``."""
    cameras = _scope(principal)
    if camera:
        for name in camera:
            visible_camera(store, principal, name, get_config(request))
        cameras = list(camera)
    found, total = holds.list_holds(
        store, cameras=cameras, include_released=include_released, limit=page.limit, offset=page.offset
    )
    return page_out([h.to_dict() for h in found], total, page)


@router.post("/holds", status_code=201, responses=errors(404, 409, 422))
def place_hold(request: Request, body: HoldIn, principal: Holder, store: StoreDep) -> dict[str, Any]:
    """Place a legal hold (201): ``{"hold": hold}``. Retention keeps its footage until it is released.

    An event's hold spans the event with its camera's ``record.pre_seconds``
    before and ``post_seconds`` after (5 s and 10 s when the camera has no
    block); an event still open is held from its start with no end. Audited.
    """
    try:
        if body.event_id is not None:
            hold = holds.place_event_hold(
                store,
                body.event_id,
                reason=body.reason,
                by=principal.name,
                config=get_config(request),
                cameras=principal.camera_scope(),
            )
        else:
            assert body.camera is not None and body.start is not None
            if not can_see(principal, body.camera):
                raise not_found_camera(body.camera)
            hold = holds.place_hold(
                store, body.camera, body.start, body.end, reason=body.reason, by=principal.name
            )
    except NotFoundError as exc:
        # The store's message may list other cameras: say only what was not found.
        raise ApiError(404, str(exc).split(" (")[0]) from None
    except holds.HoldError as exc:
        raise ApiError(422, str(exc), code="invalid") from None
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.HOLD_PLACE,
        target=hold.camera,
        detail=_detail(hold),
    )
    return {"hold": hold.to_dict()}


def _detail(hold: holds.LegalHold) -> dict[str, Any]:
    """What the audit entry keeps of a hold: which footage, why, and the event it was placed on."""
    data = hold.to_dict()
    detail = {key: data[key] for key in ("start", "end", "reason")}
    if hold.event_id is not None:
        detail["event_id"] = hold.event_id
    return {"hold_id": hold.id, **detail}


@router.post("/holds/{hold_id}/release", responses=errors(404, 409))
def release_hold(request: Request, hold_id: RowId, principal: Holder, store: StoreDep) -> dict[str, Any]:
    """Release a hold: ``{"hold": hold}``; its footage is back under normal retention. Audited.

    Operators release the holds they placed, admins any; 409 when it was
    released already.
    """
    hold = _visible_hold(store, principal, hold_id)
    if principal.user.role != Role.ADMIN and hold.created_by != principal.name:
        raise ApiError(
            403, f"hold {hold_id} was placed by {hold.created_by}: only they or an admin may release it"
        )
    try:
        released = holds.release_hold(store, hold_id, by=principal.name)
    except holds.HoldError as exc:
        raise ApiError(409, str(exc)) from None
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.HOLD_RELEASE,
        target=released.camera,
        detail=_detail(released),
    )
    return {"hold": released.to_dict()}
