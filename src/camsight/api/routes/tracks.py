"""Search, tracks, similar tracks and thumbnails (operators and admins: permission ``search``)."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as FastPath
from fastapi.responses import FileResponse, Response
from pydantic import StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from camsight.api import remote
from camsight.api.deps import (
    MAX_QUERY,
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
from camsight.api.routes.metrics import timed_search
from camsight.api.schemas import PageOf, SearchOut, TrackItemOut, TrackOut, errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.errors import NotFoundError
from camsight.search.engine import SearchEngine, SearchResult
from camsight.search.query import parse_query
from camsight.store.db import Store
from camsight.store.models import Camera, Source, Thumbnail, Track
from camsight.store.repository import count_tracks_matching, list_tracks
from camsight.timeutil import aware

router = APIRouter(tags=["search"])
Searcher = Annotated[Principal, Depends(require(Permission.SEARCH))]
#: Hits in one page at most.
MAX_HITS = 500
#: How deep a search can be paged (the engine ranks at most 1000 hits).
MAX_RANKED = 1000

#: An object class in a query (``person``, ``car``...).
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


_ENGINE_LOCK = threading.Lock()
#: Searches run at once, each whole in one worker thread (camera checks, engine, audit entry);
#: the others wait their turn in arrival order. A search is mostly Python holding the GIL: with
#: 30 clients, 30 threads interleaving every few milliseconds each took ~30 times as long, and the
#: server answered fewer searches a second than with one client; a semaphore inside the thread
#: still let waiting threads overtake each other, which spread the latencies (p95 twice the p50).
#: A few at a time keep the CPUs busy while a search's database reads wait.
_SEARCH_SLOTS = anyio.CapacityLimiter(max(2, min(4, os.cpu_count() or 2)))


def engine_of_state(state: Any) -> SearchEngine:
    """The app's one engine (made on first use): it caches the facet index between requests."""
    with _ENGINE_LOCK:
        if getattr(state, "engine", None) is None:
            state.engine = SearchEngine(
                state.store,
                embedding_weight=state.config.embeddings.weight,
                result_cache=state.config.api.search_cache,
            )
        return state.engine


def engine_of(request: Request) -> SearchEngine:
    """The search engine of the request's app."""
    return engine_of_state(request.app.state)


def thumbnail_url(track_id: int, rank: int = 0) -> str:
    return f"/api/v1/tracks/{track_id}/thumbnails/{rank}"


def _chips(result: SearchResult) -> list[dict[str, Any]]:
    """The interpretation as separate terms a UI can show (and let the user remove) one by one."""
    parsed = result.parsed()
    chips: list[dict[str, Any]] = [{"kind": "class", "text": c} for c in parsed["classes"]]
    for term in parsed["terms"]:
        words = term["words"] if isinstance(term["words"], str) else " ".join(term["words"])
        chips.append(
            {
                "kind": "attribute",
                "text": words,
                "facets": term["facets"],
                "negated": term["negated"],
                "only": term["only"],
            }
        )
    chips += [{"kind": "camera", "text": c} for c in parsed["cameras"]]
    if parsed["since"]:
        chips.append({"kind": "since", "text": parsed["since"]})
    if parsed["until"]:
        chips.append({"kind": "until", "text": parsed["until"]})
    if parsed["time_of_day"]:
        chips.append({"kind": "time_of_day", "text": "-".join(parsed["time_of_day"])})
    chips += [{"kind": "not_analysed", "text": w} for w in parsed["not_analysed"]]
    chips += [{"kind": "unknown", "text": w} for w in parsed["unknown"]]
    chips += [{"kind": "corrected", "text": w} for w in parsed["corrections"]]
    return chips


def _result_out(result: SearchResult, principal: Principal, limit: int, offset: int = 0) -> dict[str, Any]:
    # Filtered again here: a hidden camera's track must never slip out, whatever the engine did.
    hits = [h for h in result.hits if can_see(principal, h.camera)][offset : offset + limit]
    return {
        "query": result.query.text,
        "interpretation": result.interpretation,
        "chips": _chips(result),
        "notes": result.notes,
        "limit": limit,
        "offset": offset,
        "candidates": result.candidates,
        "full_matches": result.full_matches,
        "hits": [
            {
                "track_id": h.track_id,
                "camera": h.camera,
                "label": h.label,
                "start": h.start,
                "end": h.end,
                "recorded_start": h.recorded_start,
                "score": round(float(h.score), 4),
                "match": h.match,
                "explanation": h.explanation,
                "frame": h.frame,
                "box": h.box,
                "thumbnail_url": thumbnail_url(h.track_id) if h.thumbnail else None,
                "segments": _segments_out(h.segments),
            }
            for h in hits
        ],
        **({"reference": _reference_out(result.reference)} if result.reference is not None else {}),
    }


#: Renderings kept per result at most (pages and camera scopes asked of one kept result).
_RENDERINGS_PER_RESULT = 16


def _result_json(result: SearchResult, principal: Principal, limit: int, offset: int = 0) -> Response:
    """:func:`_result_out` as the JSON FastAPI would send for ``SearchOut``, kept on the result.

    With kept results most searches are answered from memory; validating and rendering the
    answer through the response model was then a third of the server's work per search (it
    runs on the event loop, where every other request waits for it).
    """
    scope = principal.camera_scope()
    # Everything of the caller that _result_out's filter (can_see) reads.
    key = ("api", limit, offset, principal.user.disabled, None if scope is None else tuple(sorted(scope)))
    body = result.renderings.get(key)
    if body is None:
        out = SearchOut.model_validate(_result_out(result, principal, limit, offset))
        body = out.model_dump_json(exclude_unset=True, by_alias=True).encode()
        if len(result.renderings) >= _RENDERINGS_PER_RESULT:
            result.renderings.clear()  # paging deep through one result: keep the newest only
        result.renderings[key] = body
    return Response(body, media_type="application/json")


def _segments_out(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **s,
            "thumbnail_url": thumbnail_url(s["track_id"]),
            "playback_url": f"/api/v1/tracks/{s['track_id']}/playback",
            "clip_url": f"/api/v1/tracks/{s['track_id']}/clip",
        }
        for s in segments
    ]


def _reference_out(h: Any) -> dict[str, Any]:
    """The reference track of "more like this", shaped as a hit."""
    return {
        "track_id": h.track_id,
        "camera": h.camera,
        "label": h.label,
        "start": h.start,
        "end": h.end,
        "recorded_start": h.recorded_start,
        "score": 1.0,
        "match": h.match,
        "explanation": [],
        "frame": h.frame,
        "box": h.box,
        "thumbnail_url": thumbnail_url(h.track_id) if h.thumbnail else None,
        "segments": _segments_out(h.segments),
    }


@router.get("/search", response_model=SearchOut, response_model_exclude_unset=True, responses=errors(404))
async def search(
    request: Request,
    principal: Searcher,
    store: StoreDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="What to look for.")],
    camera: Annotated[list[str] | None, Query(max_length=10, description="Only these cameras.")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    label: Annotated[list[ClassName] | None, Query(alias="class", max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HITS)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_RANKED - 1, description="Skip this many hits.")] = 0,
) -> Response:
    """Search by description, best first, each hit with why it matched; audited with the query.

    Pages through the best ``MAX_RANKED`` hits with ``limit`` and ``offset``.
    """
    work = partial(_search, request, principal, store, q, camera, since, until, label, limit, offset)
    return await anyio.to_thread.run_sync(work, limiter=_SEARCH_SLOTS)


def _search(
    request: Request,
    principal: Principal,
    store: Store,
    q: str,
    camera: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    label: list[str] | None,
    limit: int,
    offset: int,
) -> Response:
    """The search of :func:`search`, in a worker thread: it reads and writes the database."""
    engine = engine_of(request)
    cameras = [c for c in camera or [] if c]
    for name in cameras:
        visible_camera(store, principal, name, get_config(request))
    if cameras:
        # A camera that exists but has no tracks yet (a live camera just added) is not an
        # error: the answer is simply empty, and says why.
        indexed = engine.index_cache.get().camera_names
        waiting = [c for c in cameras if c not in indexed]
        cameras = [c for c in cameras if c in indexed]
        if not cameras:
            audit.record(
                store,
                principal.actor(client_ip(request)),
                audit.Action.SEARCH,
                target=",".join(waiting),
                detail={"query": q, "hits": 0},
            )
            parsed = parse_query(q, cameras=waiting)
            note = f"nothing from {', '.join(waiting)} is indexed yet"
            return _result_json(SearchResult(parsed, parsed.describe(), [], 0, 0, notes=[note]), principal, 0)
    if principal.camera_scope() is not None and not cameras:
        # A limited user searches only their cameras: pass them explicitly so the engine never
        # considers others (and never names them in an error).
        indexed = engine.index_cache.get().camera_names
        mine = [c for c in visible_camera_names(store, principal) if c in indexed]
        mentioned = [c for c in parse_query(q, cameras=mine).cameras if c in mine]
        cameras = mentioned or mine
        if not cameras:
            audit.record(store, principal.actor(client_ip(request)), audit.Action.SEARCH, detail={"query": q})
            parsed = parse_query(q)
            empty = SearchResult(parsed, "no footage from your cameras yet", [], 0, 0)
            return _result_json(empty, principal, 0)
    # The text is read against the caller's cameras only: a hidden camera's name must read as
    # "not understood", exactly like one that does not exist.
    known = None
    if principal.camera_scope() is not None:
        known = [c for c in engine.index_cache.get().camera_names if can_see(principal, c)]
    try:
        with timed_search(request):
            result = engine.search(
                q,
                cameras=cameras,
                since=aware(since),
                until=aware(until),
                classes=label or (),
                limit=min(MAX_RANKED, offset + limit),
                known_cameras=known,
            )
    except NotFoundError as exc:
        # The engine's message lists every known camera: say only which name was not found.
        raise ApiError(404, str(exc).split(" (")[0]) from None
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.SEARCH,
        target=",".join(camera or []) or None,
        detail={"query": q, "hits": len(result.hits)},
    )
    return _result_json(result, principal, limit, offset)


def load_track(session: Session, principal: Principal | None, track_id: int) -> tuple[Track, str, Source]:
    """The track, its camera's name and its source; 404 if missing or on a camera the caller cannot see.

    ``principal`` None: another node asks, which checked its caller already."""
    found = session.execute(
        select(Track, Camera.name, Source)
        .join(Camera, Camera.id == Track.camera_id)
        .join(Source, Source.id == Track.source_id)
        .where(Track.id == track_id)
    ).one_or_none()
    if found is None or (principal is not None and not can_see(principal, found[1])):
        # A hidden camera's track answers exactly like a missing one.
        raise ApiError(404, f"no track with id {track_id}")
    return found[0], found[1], found[2]


def _track_row(store: Store, principal: Principal, track_id: int) -> dict[str, Any]:
    with store.sessions() as session:
        t, cam, source = load_track(session, principal, track_id)
        uri = source.uri
        ranks = list(
            session.execute(
                select(Thumbnail.rank).where(Thumbnail.track_id == t.id).order_by(Thumbnail.rank)
            ).scalars()
        )
        return {
            "id": t.id,
            "camera": cam,
            "source": uri,
            "local_id": t.local_id,
            "label": t.label,
            "start": round(t.start_t, 3),
            "end": round(t.end_t, 3),
            "first_frame": t.first_frame,
            "last_frame": t.last_frame,
            "observations": t.num_observations,
            "confidence": round(t.confidence, 3),
            "heading": t.heading,
            "thumbnails": [thumbnail_url(t.id, r) for r in ranks],
        }


@router.get("/tracks", response_model=PageOf[TrackItemOut], responses=errors(404))
def tracks(
    request: Request,
    principal: Searcher,
    store: StoreDep,
    page: PageDep,
    camera: Annotated[str | None, Query(max_length=128)] = None,
    label: Annotated[str | None, Query(alias="class", min_length=1, max_length=32)] = None,
) -> PageOut:
    """Tracks of the caller's cameras, by camera and time."""
    if camera is not None:
        visible_camera(store, principal, camera, get_config(request))
    # Paged in SQL: a store can hold millions of tracks.
    scope = principal.camera_scope()
    try:
        total = count_tracks_matching(store, camera=camera, label=label, scope=scope)
        found = list_tracks(
            store, camera=camera, label=label, limit=page.limit, offset=page.offset, scope=scope
        )
    except NotFoundError:
        # Configured but nothing stored yet (checked above); the store's message would list cameras.
        return page_out([], 0, page)
    items = [
        {
            "id": t.id,
            "camera": t.camera,
            "source": t.source,
            "label": t.label,
            "start": t.start,
            "end": t.end,
            "observations": t.observations,
            "confidence": t.confidence,
            "heading": t.heading,
            "thumbnail_url": thumbnail_url(t.id) if t.thumbnail else None,
        }
        for t in found
    ]
    return page_out(items, total, page)


@router.get("/tracks/{track_id}", response_model=TrackOut, responses=errors(404))
def track(track_id: RowId, principal: Searcher, store: StoreDep) -> dict[str, Any]:
    """One track with its thumbnails' URLs."""
    return _track_row(store, principal, track_id)


@router.get(
    "/tracks/{track_id}/similar",
    response_model=SearchOut,
    response_model_exclude_unset=True,
    responses=errors(404),
)
def similar(
    request: Request,
    track_id: RowId,
    principal: Searcher,
    store: StoreDep,
    same_camera: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_HITS)] = 20,
) -> dict[str, Any]:
    """People (or objects) that look like this track, one result each, most alike first, above a
    similarity cut-off: by re-id vector when the track has one, else by colours. ``reference`` is
    the track itself, with its picture and grouped segments."""
    _track_row(store, principal, track_id)
    # Ask for more when some cameras are hidden: hits on them are dropped afterwards.
    want = limit if principal.camera_scope() is None else min(1000, limit * 4)
    result = engine_of(request).more_like(track_id, same_camera=same_camera, limit=want)
    return _result_out(result, principal, limit)


@router.get("/tracks/{track_id}/thumbnails/{rank}", response_class=FileResponse, responses=errors(404, 503))
def thumbnail(
    request: Request,
    track_id: RowId,
    rank: Annotated[int, FastPath(ge=0, le=100)],
    principal: Searcher,
    store: StoreDep,
) -> Response:
    """A thumbnail (JPEG) of the track; rank 0 is the best. Not audited (clip views are)."""
    with store.sessions() as session:
        _track, _camera, source = load_track(session, principal, track_id)
        rel = session.execute(
            select(Thumbnail.path).where(Thumbnail.track_id == track_id, Thumbnail.rank == rank)
        ).scalar_one_or_none()
    if rel is None:
        raise ApiError(404, f"track {track_id} has no thumbnail {rank}")
    # Another node's track: its thumbnails are on that node (503 while it is down). The source row
    # says which: no second look-up on the path every result page's pictures take.
    node = remote.elsewhere(request, source.node)
    if node is not None:
        return remote.remote_media(request, store, node, rel, f"the thumbnails of track {track_id}")
    return media_file(store, rel)


def media_file(store: Store, rel: str) -> FileResponse:
    """A stored JPEG by its database path; refuses anything resolving outside the media folder."""
    media = store.media.resolve()
    path = (media / rel).resolve()
    # The path comes from the database, never the request; check it anyway (a tampered row,
    # a symlink) so nothing outside media/ can be served.
    if not path.is_relative_to(media) or not path.is_file():
        raise ApiError(404, "the image file is missing")
    return FileResponse(
        Path(path), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
