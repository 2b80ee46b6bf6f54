"""The nodes on the shared database (``GET /nodes``), and the routes only other nodes may call.

``/api/v1/node/...`` serve this node's own media to the other nodes: a file
under the media folder (thumbnails, event snapshots), a track's or event's clip
(made here, where the footage is) and a camera's current picture. They take no
user credentials: each request must be signed with the shared node secret
(camsight.auth.node_auth). The user's permissions were checked, and the viewing
audited, by the node the user talks to.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.responses import FileResponse

from camsight.api.deps import RowId, StoreDep, current_principal
from camsight.api.errors import ApiError
from camsight.api.remote import CLIP_INFO_HEADER, context_of
from camsight.api.routes.clips import event_subject, local_clip, track_subject_of
from camsight.api.routes.events import load_event
from camsight.api.routes.tracks import media_file
from camsight.auth.node_auth import NodeAuthError, verify
from camsight.auth.principal import Principal
from camsight.media.camera_picture import MaskNotApplicable, camera_picture

router = APIRouter(tags=["nodes"])


def node_caller(request: Request) -> str:
    """The calling node's name, once its request's signature checks out; else 401 (403: no secret here)."""
    context = context_of(request)
    if context.secret is None:
        raise ApiError(403, "this process has no node secret, so it answers no other node")
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    path = raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    try:
        return verify(context.secret, request.headers, request.method, path)
    except NodeAuthError as exc:
        raise ApiError(401, str(exc), code="node_auth") from None


NodeCaller = Annotated[str, Depends(node_caller)]


@router.get("/nodes")
def nodes(
    request: Request, store: StoreDep, _principal: Annotated[Principal, Depends(current_principal)]
) -> dict[str, Any]:
    """Every node on the shared database: up, down or stopped, where it answers, its cameras."""
    context = context_of(request)
    return {"this": context.name, "items": [n.as_dict() for n in context.states(store)]}


@router.get("/node/media", include_in_schema=False)
def node_media(
    _node: NodeCaller, store: StoreDep, path: Annotated[str, Query(min_length=1, max_length=1000)]
) -> FileResponse:
    """A file under this node's media folder (nothing outside it is ever served)."""
    return media_file(store, path)


@router.get("/node/clips/{kind}/{subject_id}", include_in_schema=False)
def node_clip(
    request: Request, _node: NodeCaller, store: StoreDep, kind: Literal["track", "event"], subject_id: RowId
) -> FileResponse:
    """A track's or event's clip, made here from this node's footage; its description in a header."""
    if kind == "track":
        subject = track_subject_of(store, subject_id)
    else:
        row, camera, _uri = load_event(store, None, subject_id)
        subject = event_subject(store, row, camera)
    clip = local_clip(request, store, subject)
    headers = {CLIP_INFO_HEADER: json.dumps(clip.to_json()), "Cache-Control": "no-store"}
    return FileResponse(clip.path, media_type="video/mp4", headers=headers)


@router.get("/node/cameras/{name}/picture", include_in_schema=False)
def node_camera_picture(
    request: Request, _node: NodeCaller, store: StoreDep, name: Annotated[str, FastPath(max_length=128)]
) -> Response:
    """A camera's current picture, masks blanked, from this node (404 when it has none)."""
    try:
        jpeg = camera_picture(store, name, request.app.state.config.camera(name))
    except MaskNotApplicable as exc:
        raise ApiError(409, str(exc)) from None
    if jpeg is None:
        raise ApiError(404, f"camera {name!r} has no picture on this node")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
