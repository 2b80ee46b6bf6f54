"""Live view: a camera's picture as it happens, as MJPEG (``multipart/x-mixed-replace``).

An ``<img src="/api/v1/cameras/gate/live">`` shows it in any browser. The
pictures are the frames the camera's worker already decodes for analysis
(see :mod:`camsight.pipeline.live_view`), with the privacy masks blanked, at
most ``LIVE_FPS`` a second; the worker makes them only while someone
watches, and the stream ends when the viewer closes it.

Access is that of the Cameras page (``view_live``) and limited to the
caller's cameras: another camera answers 403. Each stream opened is audited
(``live.view``). The caller's session or token
is checked again every few seconds, so disabling a user or revoking a token
ends their streams too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from camsight.api.deps import SESSION_COOKIE, StoreDep, bearer_token, can_see, client_ip, require
from camsight.api.errors import ApiError
from camsight.api.schemas import errors
from camsight.auth import audit, login
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.pipeline.live_view import LiveChannel

router = APIRouter(tags=["cameras"])
LiveViewer = Annotated[Principal, Depends(require(Permission.VIEW_LIVE))]
CameraName = Annotated[str, Path(min_length=1, max_length=128, description="The camera's name.")]

BOUNDARY = "camsight-frame"
#: How often the stream looks for a new picture (well under a frame at ``LIVE_FPS``).
POLL_SECONDS = 0.03
#: The newest picture is sent again after this long without a new one, so a gone viewer is noticed.
KEEPALIVE_SECONDS = 2.0
#: How often the caller's credentials are checked again while the stream runs.
REAUTH_SECONDS = 5.0
#: How long a stream waits for a restarting camera's worker before it ends.
GONE_SECONDS = 30.0
#: An older picture is not sent when a stream starts: it is what an earlier viewer last saw.
FRESH_SECONDS = 1.0


def _part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode("ascii") + jpeg + b"\r\n"


def _shutting_down(request: Request) -> bool:
    """Whether the server is stopping: an open stream would otherwise hold its shutdown forever."""
    server = getattr(request.app.state, "server", None)
    return bool(getattr(server, "should_exit", False))


def _still_allowed(request: Request, camera: str) -> bool:
    """The request's credential still works and still sees ``camera`` (run in a worker thread)."""
    api_token = bearer_token(request)
    principal = login.authenticate(
        request.app.state.store,
        session_token=None if api_token else request.cookies.get(SESSION_COOKIE),
        api_token=api_token,
    )
    return principal is not None and principal.can(Permission.VIEW_LIVE) and can_see(principal, camera)


async def _frames(request: Request, supervisor: Any, camera: str) -> AsyncIterator[bytes]:
    channel: LiveChannel | None = None
    seq = 0
    jpeg: bytes | None = None
    now = time.monotonic()
    sent_at, checked_at, seen_at = now, now, now
    while not _shutting_down(request):
        now = time.monotonic()
        current = supervisor.live_channel(camera)
        if current is None:
            if now - seen_at > GONE_SECONDS:
                return  # the camera was removed, or its worker cannot start: the viewer sees it end
        else:
            seen_at = now
            if current is not channel:  # a restarted worker publishes into a new channel
                channel, seq = current, 0
            current.want()
            found = current.latest(seq, max_age=FRESH_SECONDS if jpeg is None else None)
            if found is not None:
                seq, jpeg = found
                sent_at = now
                yield _part(jpeg)
            elif jpeg is not None and now - sent_at > KEEPALIVE_SECONDS:
                sent_at = now
                yield _part(jpeg)
        if now - checked_at > REAUTH_SECONDS:
            checked_at = now
            if not await run_in_threadpool(_still_allowed, request, camera):
                return
        await asyncio.sleep(POLL_SECONDS)


@router.get(
    "/cameras/{name}/live",
    response_class=StreamingResponse,
    responses=errors(403, 404, 409)
    | {
        200: {
            "content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}},
            "description": "JPEG pictures, one per part, until the viewer closes the stream.",
        }
    },
)
def live(request: Request, name: CameraName, principal: LiveViewer, store: StoreDep) -> StreamingResponse:
    """The camera's live picture as MJPEG, privacy masks blanked; ends when the viewer closes it.

    403 when the caller may not see the camera; 404 when there is no such camera; 409 when it is
    not a running live camera (recorded footage only, disabled, or the server runs no cameras).
    """
    if not can_see(principal, name):
        raise ApiError(403, f"you may not view camera {name!r}: it is not among your cameras")
    config = request.app.state.config
    cam = config.camera(name)
    if cam is None:
        raise ApiError(404, f"no live camera named {name!r}")
    if cam.url is None or not cam.enabled:
        why = "it is disabled" if cam.url is not None else "it has recorded footage only (no url)"
        raise ApiError(409, f"camera {name!r} has no live view: {why}")
    supervisor = getattr(request.app.state, "supervisor", None)
    if supervisor is None or supervisor.live_channel(name) is None:
        raise ApiError(
            409, f"camera {name!r} is not running now: see its state on the Cameras page (camsight run)"
        )
    audit.record(store, principal.actor(client_ip(request)), audit.Action.LIVE_VIEW, target=name)
    return StreamingResponse(
        _frames(request, supervisor, name),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "private, no-store", "X-Accel-Buffering": "no"},
    )
