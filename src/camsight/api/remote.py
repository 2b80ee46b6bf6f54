"""Footage held by another node, served through this one (see docs/scaling.md).

Media stays on the node that made it. When a user asks this node for a clip,
a thumbnail or a snapshot that another node holds, the caller's permissions are
checked and the viewing audited here as usual; only the bytes come from the
holding node, over its signed node routes (api/routes/nodes.py). Clips fetched
are kept in this node's clip cache (``media/clips/remote``) under the same key
the holder uses, so seeking in a clip does not fetch it again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request, Response

from camsight.api.errors import ApiError
from camsight.config import CameraConfig
from camsight.media.clip import ClipError
from camsight.media.clip_cache import ClipCache, clip_key
from camsight.media.track_clip import ClipInfo, ClipWindow, Footage, live_window
from camsight.service.nodes import NODE_PREFIX, NodeContext, NodeUnavailable, fetch, media_path
from camsight.store.db import Store
from camsight.store.nodes import source_node

log = logging.getLogger(__name__)

#: Header in which a node sends a clip's description (ClipInfo.to_json) beside its bytes.
CLIP_INFO_HEADER = "X-Camsight-Clip"
#: Largest file taken from another node (a 120 s clip is far smaller).
MAX_FETCH_BYTES = 512 * 1024**2


def context_of(request: Request) -> NodeContext:
    """This process's node context (every app has one; a single box's has no name)."""
    return request.app.state.node


def holder(request: Request, store: Store, source_id: int | None, camera: str) -> str | None:
    """The other node holding a source's (or, without one, a camera's) media; None when it is here."""
    with store.sessions() as session:
        return elsewhere(request, source_node(session, source_id, camera))


def elsewhere(request: Request, node: str | None) -> str | None:
    """``node`` (the one holding some media) when it is another node than this one; None: here."""
    return None if node is None or node == context_of(request).name else node


def _unavailable(exc: NodeUnavailable) -> ApiError:
    return ApiError(503, str(exc), code="node_unavailable")


def _passed_on(response: httpx.Response, what: str, node: str) -> ApiError:
    """The holding node's refusal, as this node's answer (its 404 stays a 404)."""
    detail = None
    try:
        response.read()
        body = response.json()
        detail = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except (ValueError, AttributeError, httpx.HTTPError):
        pass
    if response.status_code in (404, 409):
        return ApiError(response.status_code, str(detail or f"node {node!r} has no {what}"))
    log.warning("node fetch refused", extra={"node": node, "status": response.status_code, "detail": detail})
    return ApiError(503, f"node {node!r} that holds {what} could not send it ({response.status_code})")


def _read(response: httpx.Response, what: str, node: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_FETCH_BYTES:
            raise ApiError(503, f"node {node!r} sent more than {MAX_FETCH_BYTES} bytes for {what}")
        chunks.append(chunk)
    return b"".join(chunks)


def remote_picture(request: Request, store: Store, node: str, path: str, what: str) -> bytes:
    """A JPEG (or other small file) from ``node``'s ``path``; ApiError 503 when the node is down."""
    try:
        with fetch(store, context_of(request), node, path, what=what) as response:
            if response.status_code != 200:
                raise _passed_on(response, what, node)
            return _read(response, what, node)
    except NodeUnavailable as exc:
        raise _unavailable(exc) from None


def remote_media(request: Request, store: Store, node: str, rel: str, what: str) -> Response:
    """A file under ``node``'s media folder (a thumbnail, an event snapshot) as a JPEG response."""
    data = remote_picture(request, store, node, media_path(rel), what)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def remote_clip(
    request: Request,
    store: Store,
    node: str,
    *,
    kind: str,
    subject_id: int,
    footage: Footage,
    window: ClipWindow,
    camera_config: CameraConfig | None,
) -> ClipInfo:
    """The clip of a track or event held by ``node``: from this node's cache, else fetched now.

    The cache key is the holder's own (footage, window, masks) plus the node, so
    a clip whose window grew (a live event still open) is fetched again.
    """
    name = f"{kind}-{subject_id}"
    what = f"the footage of {kind} {subject_id}"
    key: dict[str, Any] = {**clip_key(footage, live_window(footage, window), camera_config), "node": node}
    cache = ClipCache(store.media / "clips" / "remote")

    def make(tmp: Path) -> ClipInfo:
        path = f"{NODE_PREFIX}/clips/{kind}/{subject_id}"
        with fetch(store, context_of(request), node, path, what=what) as response:
            if response.status_code != 200:
                raise _passed_on(response, what, node)
            try:
                info = json.loads(response.headers[CLIP_INFO_HEADER])
            except (KeyError, ValueError):
                raise ApiError(503, f"node {node!r} sent {what} without its description") from None
            size = 0
            with tmp.open("wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FETCH_BYTES:
                        raise ApiError(
                            503, f"node {node!r} sent more than {MAX_FETCH_BYTES} bytes for {what}"
                        )
                    out.write(chunk)
        return ClipInfo.from_json(tmp, info)

    try:
        return cache.get(name, key, make)
    except NodeUnavailable as exc:
        raise _unavailable(exc) from None
    except (ClipError, OSError) as exc:
        log.error("cannot keep a fetched clip", extra={"subject": name, "error": str(exc)})
        raise ApiError(
            503, f"the clip of {kind} {subject_id} cannot be kept here right now; try again"
        ) from None
