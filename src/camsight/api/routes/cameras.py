"""Cameras: list, health, snapshot; add, edit, remove; zones, lines, masks and rules; the config.

Reading needs ``view_live`` and sight of the camera (a camera the caller may
not see answers exactly like a missing one); changing needs
``manage_cameras`` (admins); the config itself needs ``change_config``.

Every change is saved to the config file (see :mod:`camsight.config.edit`:
validated whole, written atomically with a ``.bak``, comments kept) and
applied to the running service at once: ``app.state.config`` is replaced and
the camera supervisor starts, stops or restarts workers to match. A camera
edit that is refused (a self-intersecting polygon, a point outside 0-1, an
unknown zone in a rule...) answers 422 with the validator's
``file:line: key: message`` and leaves the file untouched.

Geometry is in the config's own formats: points normalised to 0-1 (what
the web app sends) or in pixels of the frame. A restricted-zone rule::

    PATCH /api/v1/cameras/gate
    {"zones": {"door": {"points": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]}},
     "rules": [{"type": "zone_intrusion", "zone": "door", "classes": ["person"],
                "min_seconds": 1, "schedule": "night"}]}

Each key given replaces that key wholesale (send every zone, not only the new
one); a key given as null goes back to its default where that is null
(``url``, ``size``...). When zones, lines, masks or rules change on a camera
with indexed files, a job indexes its stored files again (so search and
events follow the new rules) and the answer carries it.

Removing a camera takes it out of the config and stops its worker; its
stored footage, tracks and events are kept (a camera with indexed files
stays listed, without a config block).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy import func, select

from camsight.api import remote
from camsight.api.deps import (
    PageDep,
    PageOut,
    StoreDep,
    can_see,
    client_ip,
    declared_length,
    not_found_camera,
    page_out,
    require,
)
from camsight.api.errors import ApiError
from camsight.api.schemas import CameraChangeOut, CameraOut, ConfigCheckOut, ConfigOut, PageOf, errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.config import Config
from camsight.config.camera import api_source_problem
from camsight.config.edit import (
    GEOMETRY_KEYS,
    MAX_CONFIG_BYTES,
    CameraExists,
    CameraMissing,
    ConfigEdit,
    ConfigFile,
    ConfigFileError,
    check_text,
    depth_ok,
    redact,
)
from camsight.errors import ConfigError
from camsight.media.camera_picture import MaskNotApplicable, camera_picture
from camsight.store import events as store_events
from camsight.store.db import Store
from camsight.store.models import Camera, Source
from camsight.store.nodes import NodeState, node_states
from camsight.store.repository import camera_status

log = logging.getLogger(__name__)

router = APIRouter(tags=["cameras"])
LiveViewer = Annotated[Principal, Depends(require(Permission.VIEW_LIVE))]
CameraAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_CAMERAS))]
ConfigAdmin = Annotated[Principal, Depends(require(Permission.CHANGE_CONFIG))]
#: Longest camera name in a path (the database column holds 128 characters).
MAX_NAME = 128
CameraName = Annotated[str, Path(min_length=1, max_length=MAX_NAME, description="The camera's name.")]
#: A new camera's name: a letter, digit or underscore, then those, spaces, dots and dashes.
NEW_NAME = re.compile(r"^\w[\w .-]{0,63}$")
#: Largest JSON body of a camera change (a block with many detailed polygons is tens of KB).
MAX_BODY = 1_000_000
#: Largest JSON body of a config check: the text, escaped in JSON.
MAX_CHECK_BODY = 2 * MAX_CONFIG_BYTES + 1024
_EDITOR_GUARD = threading.Lock()


# --------------------------------------------------------------------------- request bodies


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


async def _json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read no further than ``limit`` bytes (413 past it)."""
    declared_length(request, limit, f"the request body is larger than {limit} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
    try:
        data = json.loads(bytes(body), parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    if not depth_ok(data):
        raise ApiError(400, "the body is nested too deeply")
    return data


async def camera_body(request: Request) -> dict[str, Any]:
    """A camera change's body: a JSON object of at most ``MAX_BODY`` bytes."""
    return await _json_object(request, MAX_BODY)


async def check_body(request: Request) -> dict[str, Any]:
    """A config check's body: ``{"yaml": text}``, the text at most ``MAX_CONFIG_BYTES``."""
    return await _json_object(request, MAX_CHECK_BODY)


CameraBody = Annotated[dict[str, Any], Depends(camera_body)]
CheckBody = Annotated[dict[str, Any], Depends(check_body)]


def _body_schema(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


_BLOCK = {
    "type": "object",
    "description": "Camera keys (url, enabled, zones, lines, masks, rules, size, record...); "
    "see the config reference.",
    "additionalProperties": True,
}
_ZONE_EXAMPLE = {
    "zones": {"door": {"points": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]}},
    "rules": [{"type": "zone_intrusion", "zone": "door", "min_seconds": 1}],
}


# --------------------------------------------------------------------------- what there is


class _Stored:
    """What the store knows of the cameras: kinds, which have indexed files, frame sizes."""

    def __init__(self, store: Store) -> None:
        with store.sessions() as session:
            rows = session.execute(select(Camera.id, Camera.name, Camera.kind)).all()
            #: Cameras run by a node (camsight run --node) -> that node.
            self.node = {n: node for n, node in session.execute(select(Camera.name, Camera.node)) if node}
            with_files = set(
                session.scalars(
                    select(Source.camera_id).where(~Source.fingerprint.startswith("live:")).distinct()
                )
            )
            newest = session.execute(
                select(Source.camera_id, Source.width, Source.height).where(
                    Source.id.in_(select(func.max(Source.id)).group_by(Source.camera_id))
                )
            ).all()
        sizes = {cid: [int(w), int(h)] for cid, w, h in newest if w and h}
        self.kind = {name: kind for _id, name, kind in rows}
        self.files = {name for cid, name, _kind in rows if cid in with_files}
        self.size = {name: sizes[cid] for cid, name, _kind in rows if cid in sizes}
        self.health = dict(camera_status(store))
        self.store = store
        self._nodes: dict[str, NodeState] | None = None

    def node_state(self, name: str, config: Config) -> NodeState | None:
        """The state of the node running camera ``name`` (None: no node runs it)."""
        node = self.node.get(name)
        if node is None:
            return None
        if self._nodes is None:
            states = node_states(self.store, config.nodes.down_after_seconds)
            self._nodes = {n.name: n for n in states}
        return self._nodes.get(node)

    def listed(self, config: Config) -> list[str]:
        """Cameras of the config, and of the store those with indexed files (removed live ones are not)."""
        names = set(config.cameras)
        names |= {n for n, kind in self.kind.items() if kind == "file" or n in self.files}
        # Every node's cameras, also those missing from this node's config file.
        names |= set(self.node)
        return sorted(names)


def _health(status: Any) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "state": status.state,
        "fps_in": round(status.fps_in or 0.0, 2),
        "fps_analysed": round(status.fps_analysed or 0.0, 2),
        "lag_seconds": round(status.lag_seconds or 0.0, 2),
        "last_frame_at": store_events.aware(status.last_frame_at).isoformat()
        if status.last_frame_at
        else None,
        "reconnects": status.reconnects,
        "error": status.error,
    }


def _node_health(health: dict[str, Any] | None, node: NodeState | None) -> dict[str, Any] | None:
    """A camera's health, said to be unknown while the node running it is down (its last
    state in the database would otherwise look current)."""
    if node is None or node.up:
        return health
    return {
        **(health or {"fps_in": 0.0, "fps_analysed": 0.0, "lag_seconds": 0.0, "last_frame_at": None}),
        "reconnects": (health or {}).get("reconnects"),
        "state": f"node-{node.state}",
        "error": f"node {node.name!r} that runs this camera is {node.state} "
        f"(last seen {node.age_seconds:.0f} s ago)",
    }


def _not_assigned(name: str, config: Config, stored: _Stored) -> dict[str, Any] | None:
    """The health of a camera that no node runs, when this process is a node; else None.

    A node sees the cameras of the shared config; one without ``node:`` (and no ``nodes.default``)
    is run by none of them, so its health says so rather than nothing (or a stale last state).
    """
    cam = config.camera(name)
    if (
        stored.store.node is None  # a process without --node runs such cameras itself
        or cam is None
        or not cam.url
        or not cam.enabled
        or config.node_of(name) is not None
        or name in stored.node
    ):
        return None
    from camsight.config.nodes import unassigned_warning

    return {
        "state": "not-assigned",
        "fps_in": 0.0,
        "fps_analysed": 0.0,
        "lag_seconds": 0.0,
        "last_frame_at": None,
        "reconnects": None,
        "error": unassigned_warning([name]),
    }


def _dump(model: Any) -> dict[str, Any]:
    # Every value, defaults included (so a client can show them), but no nulls.
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _shapes(shapes: dict[str, Any]) -> dict[str, Any]:
    return {n: _dump(s) for n, s in shapes.items()}


def _item(name: str, config: Config, stored: _Stored, principal: Principal) -> dict[str, Any]:
    """A camera as clients see it: never a password (URLs only for admins, redacted)."""
    from camsight.urls import redact_url

    cam = config.camera(name)
    admin = principal.can(Permission.MANAGE_CAMERAS)
    size = list(cam.size) if cam is not None and cam.size else stored.size.get(name)
    return {
        "name": name,
        "kind": "live" if cam is not None and cam.url else stored.kind.get(name, "file"),
        "enabled": cam.enabled if cam is not None else True,
        "in_config": cam is not None,
        "url": redact_url(cam.url) if admin and cam is not None and cam.url else None,
        "health": _not_assigned(name, config, stored)
        or _node_health(_health(stored.health.get(name)), stored.node_state(name, config)),
        "node": stored.node.get(name) or config.node_of(name),
        "snapshot_url": f"/api/v1/cameras/{quote(name, safe='')}/snapshot",
        "size": size,
        "zones": _shapes(cam.zones) if cam is not None else {},
        "lines": _shapes(cam.lines) if cam is not None else {},
        "masks": _shapes(cam.masks) if cam is not None else {},
        "rules": [_dump(r) for r in cam.rules] if cam is not None else [],
    }


def _config(request: Request) -> Config:
    return request.app.state.config


def _find(request: Request, store: Store, principal: Principal, name: str) -> _Stored:
    """The store's view, once ``name`` is known to exist and be visible; else the usual 404."""
    if not can_see(principal, name):
        raise not_found_camera(name)
    stored = _Stored(store)
    if name not in stored.listed(_config(request)):
        raise not_found_camera(name)
    return stored


@router.get("/cameras", response_model=PageOf[CameraOut])
def cameras(request: Request, principal: LiveViewer, store: StoreDep, page: PageDep) -> PageOut:
    """The caller's cameras: those in the config and those with indexed files, with health and geometry."""
    config = _config(request)
    stored = _Stored(store)
    names = [n for n in stored.listed(config) if can_see(principal, n)]
    items = [_item(n, config, stored, principal) for n in page.slice(names)]
    return page_out(items, len(names), page)


@router.get("/cameras/{name}", response_model=CameraOut, responses=errors(404))
def camera(request: Request, name: CameraName, principal: LiveViewer, store: StoreDep) -> dict[str, Any]:
    """One camera (the same item as in the list)."""
    stored = _find(request, store, principal, name)
    return _item(name, _config(request), stored, principal)


# --------------------------------------------------------------------------- snapshots


@router.get(
    "/cameras/{name}/snapshot",
    response_class=Response,
    responses=errors(404, 409, 503)
    | {200: {"content": {"image/jpeg": {}}, "description": "A JPEG picture."}},
)
def snapshot(request: Request, name: CameraName, principal: LiveViewer, store: StoreDep) -> Response:
    """The camera's current picture (JPEG) with its privacy masks blanked.

    A live camera: the latest frame its worker saved (every few seconds). Else,
    or before the first one: a frame of the camera's newest indexed file that is
    still on disk. 404 when there is neither.
    """
    _find(request, store, principal, name)
    node = remote.holder(request, store, None, name)
    if node is not None:
        # Run by another node: its current picture is there (503 while that node is down).
        path = f"{remote.NODE_PREFIX}/cameras/{quote(name, safe='')}/picture"
        jpeg = remote.remote_picture(request, store, node, path, f"camera {name!r}'s picture")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
    try:
        jpeg = camera_picture(store, name, _config(request).camera(name))
    except MaskNotApplicable as exc:
        raise ApiError(409, str(exc)) from None
    if jpeg is None:
        raise ApiError(
            404,
            f"camera {name!r} has no picture yet: it is not running and none of its indexed files is on disk",
        )
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- changes


def _editor(request: Request) -> ConfigFile:
    """The app's config file editor, made on first use from ``app.state.config_path``."""
    state = request.app.state
    path = getattr(state, "config_path", None)
    if path is None:
        raise ApiError(
            409,
            "this server has no config file to save changes to (camsight run keeps one in its data folder)",
            code="no_config_file",
        )
    with _EDITOR_GUARD:
        editor = getattr(state, "config_file", None)
        if editor is None or editor.path != FsPath(path).expanduser():
            try:
                editor = ConfigFile.from_running(FsPath(path), state.config)
            except ConfigError as exc:
                raise _file_error(exc) from None
            state.config_file = editor
    return editor


def _file_error(exc: ConfigError) -> ApiError:
    return ApiError(409, f"the config file has a problem; fix it first: {exc}", code="config_file_invalid")


def _invalid(exc: ConfigError) -> ApiError:
    if isinstance(exc, ConfigFileError):
        return _file_error(exc)
    if isinstance(exc, CameraExists):
        return ApiError(409, str(exc))
    if isinstance(exc, CameraMissing):
        return ApiError(409, f"{exc} (nothing to remove; its indexed footage is kept)")
    return ApiError(422, str(exc), code="invalid")


def _publish(request: Request, edit: ConfigEdit) -> None:
    """Make the edited config the running one: the API's, then the camera workers'."""
    request.app.state.config = edit.config
    supervisor = getattr(request.app.state, "supervisor", None)
    if supervisor is not None:
        try:
            supervisor.apply(edit.config)
        except Exception:  # saved and in the API already; the workers follow on the next restart
            log.exception("cannot apply the new config to the camera workers")


def _check_sources(request: Request, name: str, body: dict[str, Any]) -> None:
    """Refuse a ``url`` or ``detect_url`` that an API client may not point a camera at (422).

    The config file and ``--camera`` are the machine owner's; over the API a
    camera reads network streams (no link-local hosts) and local files only
    inside ``storage.camera_folders``, so an admin's account cannot read
    ``/etc/shadow`` or ``/proc`` through a camera. A value the camera already
    runs with (given by the owner) is not a change and stays allowed.
    """
    config = _config(request)
    current = config.camera(name)
    for key in ("url", "detect_url"):
        value = body.get(key)
        if not isinstance(value, str):
            continue  # null or a wrong type: the config's validation answers
        if current is not None and getattr(current, key) == value.strip():
            continue
        problem = api_source_problem(value, config.storage.camera_folders)
        if problem is not None:
            raise ApiError(422, f"cameras.{name}.{key}: {problem}", code="invalid")


def _names_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
    }


def _audit_value(camera: Any, key: str) -> Any:
    """A camera key's value as the audit log shows it: passwords and URL secrets as ``***``."""
    if camera is None:
        return None
    value = camera.model_dump(mode="json", by_alias=True, include={key}).get(key)
    return redact({key: value})[key]


def _audit_action(keys: list[str], change: str) -> audit.Action:
    """The one action an edit is recorded under: a mask change is a privacy change wherever it is."""
    if "masks" in keys:
        return audit.Action.MASK_CHANGE
    if change == "update" and GEOMETRY_KEYS & set(keys):
        return audit.Action.ZONE_CHANGE
    return audit.Action.CAMERA_CHANGE


def _record(request: Request, store: Store, principal: Principal, edit: ConfigEdit, change: str) -> None:
    """One audit entry per edit, with what changed: names of shapes and rules, other keys' values.

    Keys the edit did not change are not named (the web app sends every
    shape on each save). Secrets never appear: passwords and passwords in
    URLs are ``***``.
    """
    keys = list(edit.changed)
    before, after = edit.before, edit.after
    detail: dict[str, Any] = {"change": change, "keys": keys}
    for key in keys:
        if key in ("zones", "lines", "masks"):
            detail[key] = _names_diff(
                getattr(before, key) if before is not None else {},
                getattr(after, key) if after is not None else {},
            )
        elif key == "rules":
            old = {r.display_name(): r for r in before.rules} if before is not None else {}
            new = {r.display_name(): r for r in after.rules} if after is not None else {}
            detail["rules"] = {"before": len(old), "after": len(new), **_names_diff(old, new)}
        else:
            detail[key] = {"before": _audit_value(before, key), "after": _audit_value(after, key)}
    if change == "remove":
        detail["footage_kept"] = True
    actor = principal.actor(client_ip(request))
    audit.record(store, actor, _audit_action(keys, change), target=edit.camera, detail=detail)


def _reindex(request: Request, store: Store, principal: Principal, edit: ConfigEdit) -> dict[str, Any] | None:
    """Queue indexing the camera's stored files again when its geometry or rules changed."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None or not GEOMETRY_KEYS & set(edit.changed):
        return None
    if edit.camera not in _Stored(store).files:
        return None
    job = jobs.submit_reindex(edit.camera, by=principal.name)
    return job.to_dict() if hasattr(job, "to_dict") else None


@router.post(
    "/cameras",
    response_model=CameraChangeOut,
    status_code=201,
    openapi_extra=_body_schema(
        {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    # NEW_NAME, and no trailing space (names are refused unless stripped).
                    "pattern": r"^\w([\w .-]{0,62}[\w.-])?$",
                },
                "url": {"type": ["string", "null"]},
            },
            "additionalProperties": True,
        },
        {"name": "gate", "url": "rtsp://user:password@10.0.0.5/stream1", "record": {"mode": "events"}},
    ),
    responses=errors(409, 413, 415, 422),
)
def add_camera(request: Request, principal: CameraAdmin, store: StoreDep, body: CameraBody) -> dict[str, Any]:
    """Add a camera: ``{"name", "url", ...any camera keys}``; saved to the config and started (201).

    Answers ``{"camera": item, "job": job or null}`` like PATCH. 409 when the
    config already has a camera of that name. A camera known only from
    indexed files can be given a config block this way (its files are then
    indexed again when zones, lines, masks or rules come with it).
    """
    name = body.pop("name", None)
    if not isinstance(name, str) or not NEW_NAME.match(name) or name != name.strip():
        raise ApiError(
            400,
            "name: give 1-64 letters, digits, spaces, dots, dashes or underscores, "
            "starting with a letter or digit",
        )
    editor = _editor(request)
    with editor.lock:  # the file and the running config change together, in the order of the edits
        _check_sources(request, name, body)
        try:
            edit = editor.add_camera(name, body)
        except ConfigError as exc:
            raise _invalid(exc) from None
        _publish(request, edit)
    _record(request, store, principal, edit, "add")
    job = _reindex(request, store, principal, edit)
    return {"camera": _item(name, edit.config, _Stored(store), principal), "job": job}


@router.patch(
    "/cameras/{name}",
    response_model=CameraChangeOut,
    openapi_extra=_body_schema(_BLOCK, _ZONE_EXAMPLE),
    responses=errors(404, 409, 413, 415, 422),
)
def update_camera(
    request: Request, name: CameraName, principal: CameraAdmin, store: StoreDep, body: CameraBody
) -> dict[str, Any]:
    """Change camera keys, each given key replaced wholesale: ``{"camera": item, "job": job or null}``.

    ``job`` is the re-indexing of the camera's stored files, queued when its
    zones, lines, masks or rules changed and it has indexed files.
    """
    _find(request, store, principal, name)
    if not body:
        raise ApiError(400, "nothing to change: give at least one camera key")
    editor = _editor(request)
    with editor.lock:
        _check_sources(request, name, body)
        try:
            edit = editor.update_camera(name, body)
        except ConfigError as exc:
            raise _invalid(exc) from None
        _publish(request, edit)
    if edit.changed:
        _record(request, store, principal, edit, "update")
    job = _reindex(request, store, principal, edit)
    return {"camera": _item(name, edit.config, _Stored(store), principal), "job": job}


@router.delete("/cameras/{name}", status_code=204, response_class=Response, responses=errors(404, 409))
def remove_camera(request: Request, name: CameraName, principal: CameraAdmin, store: StoreDep) -> Response:
    """Remove the camera from the config and stop its worker (204).

    Its stored footage, tracks and events are kept; a camera with indexed
    files stays listed without a config block. 409 when it has no block.
    """
    _find(request, store, principal, name)
    editor = _editor(request)
    with editor.lock:
        try:
            edit = editor.remove_camera(name)
        except ConfigError as exc:
            raise _invalid(exc) from None
        _publish(request, edit)
    _record(request, store, principal, edit, "remove")
    return Response(status_code=204)


# --------------------------------------------------------------------------- the config


@router.get("/config", response_model=ConfigOut, responses=errors(409))
def get_config(request: Request, principal: ConfigAdmin) -> dict[str, Any]:
    """The running config as YAML with every secret shown as ``***``.

    ``{"yaml": text, "file": the config file's name or null, "runtime_cameras": [...]}``:
    the file's text (comments kept) with cameras given on the command line as
    they run; ``runtime_cameras`` names those not saved in the file yet.
    """
    import yaml

    if getattr(request.app.state, "config_path", None) is None:
        data = _config(request).model_dump(mode="json", by_alias=True, exclude_defaults=True)
        text = yaml.safe_dump(redact(data), sort_keys=False, allow_unicode=True) if data else ""
        return {"yaml": text, "file": None, "runtime_cameras": []}
    editor = _editor(request)
    try:
        text = editor.text(redacted=True)
    except ConfigError as exc:
        raise _file_error(exc) from None
    return {"yaml": text, "file": editor.origin, "runtime_cameras": editor.runtime_cameras()}


@router.post(
    "/config/check",
    response_model=ConfigCheckOut,
    response_model_exclude_unset=True,
    openapi_extra=_body_schema(
        {"type": "object", "required": ["yaml"], "properties": {"yaml": {"type": "string"}}},
        {"yaml": "cameras:\n  gate:\n    url: rtsp://10.0.0.5/stream1\n"},
    ),
    responses=errors(413, 415, 422),
)
def check_config(request: Request, principal: ConfigAdmin, body: CheckBody) -> dict[str, Any]:
    """Validate config text without saving it: ``{"ok": true}`` or ``{"ok": false, "errors": [...]}``.

    Each error reads ``file:line: key: message``. 413 past 1 MB of text, 422 when
    ``yaml`` is not text.
    """
    text = body.get("yaml")
    if not isinstance(text, str):
        raise ApiError(422, "yaml: must be the config as text", code="invalid")
    if "\x00" in text:
        raise ApiError(422, "yaml: must be text, not binary data", code="invalid")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ApiError(413, f"yaml: the config is larger than {MAX_CONFIG_BYTES} bytes")
    path = getattr(request.app.state, "config_path", None)
    origin = FsPath(path).name if path is not None else "config.yaml"
    errors = check_text(text, origin)
    return {"ok": True} if not errors else {"ok": False, "errors": errors}
