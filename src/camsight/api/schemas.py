"""What the OpenAPI document says about errors, and the error body every route may answer with.

Routes declare their own error statuses with :func:`errors` (``responses=errors(404, 409)``);
:func:`document_errors` adds what every route shares, so the document lists every status a
client can meet:

- 400 for a malformed request (FastAPI's own 422 is never sent: see :mod:`camsight.api.errors`);
- 401 and 403 on every route behind sign-in (no credentials; a role without the permission, a
  password to change first, a cross-site request);
- 500, which any route may answer when something unforeseen fails.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from camsight.api.errors import CODES

#: What each status means, as the document says it.
_MEANINGS: dict[int, str] = {
    400: "The request is malformed (a parameter or the body is invalid).",
    401: "Not signed in: no valid session cookie or API token.",
    403: "Signed in, but not allowed: the role lacks the permission, the password must be changed "
    "first, or the request is cross-site.",
    404: "Not found (or on a camera the caller may not see, which answers the same).",
    405: "The path does not take this method; ``Allow`` lists those it takes.",
    409: "Conflicts with the current state.",
    410: "Gone.",
    413: "The request body is too large.",
    415: "The body is not of a supported type.",
    416: "The range lies outside the file.",
    422: "Understood, but refused by validation (the message says why).",
    429: "Too many attempts; retry after ``Retry-After`` seconds.",
    500: "The server could not complete the request (details are in its log, never here).",
    503: "Temporarily unavailable; try again later.",
    507: "Not enough free disk space.",
}
_PUBLIC = {"/api/v1/health", "/api/v1/auth/login"}


class ErrorDetail(BaseModel):
    """What went wrong: the HTTP status, a machine-readable code, and a sentence for people."""

    model_config = ConfigDict(extra="forbid")

    status: int
    code: str
    message: str
    #: Validation errors only: the parameter or body field at fault, and why.
    field: str | None = None
    reason: str | None = None


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"status", "code", "message"}}``."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


def errors(*statuses: int, **meanings: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses, each with the error body.

    ``meanings`` overrides the general description by status (``s409="..."``).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        text = meanings.get(f"s{status}") or _MEANINGS.get(status) or CODES.get(status, "error")
        out[status] = {"model": ErrorOut, "description": text}
    return out


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _MEANINGS.get(status, CODES.get(status, "error")),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }


def _is_fastapi_422(answer: dict[str, Any]) -> bool:
    ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the shared error statuses of every route (see the module)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs"))
        components["ErrorOut"] = error_schema
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                answers = operation.setdefault("responses", {})
                if "422" in answers and _is_fastapi_422(answers["422"]):
                    del answers["422"]  # never sent: validation errors answer 400
                shared = [400, 500] if path in _PUBLIC else [400, 401, 403, 500]
                if path == "/api/v1/health":
                    shared = [500]
                for status in shared:
                    answers.setdefault(str(status), _error_response(status))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# --------------------------------------------------------------------------- answers
#
# What routes answer, as the document shows it. Unknown keys are let through (``extra="allow"``):
# a field added to a dict on the way out shows up at once instead of being dropped silently.


T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class PageOf(_Out, Generic[T]):
    """A page of a list: the items, how many there are in all, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class HealthOut(_Out):
    status: str


class UserOut(_Out):
    id: int
    name: str
    role: str
    #: None: every camera.
    cameras: list[str] | None
    disabled: bool
    must_change_password: bool
    created_at: str
    last_login_at: str | None


class NewUserOut(UserOut):
    #: Present when the server generated the password (none was sent): shown in this answer only.
    one_time_password: str | None = None


class LoginOut(_Out):
    user: UserOut
    expires_at: str


class MeOut(_Out):
    user: UserOut
    via: str
    permissions: list[str]


class PasswordOut(_Out):
    user: UserOut


class PasswordResetOut(_Out):
    user: UserOut
    #: The new one-time password: shown in this answer only; it must be changed at the next sign-in.
    password: str


class TokenOut(_Out):
    id: int
    user: str
    name: str
    prefix: str
    display: str
    state: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class NewTokenOut(_Out):
    token: TokenOut
    #: The token itself: shown in this answer only.
    secret: str


class RevokedTokensOut(_Out):
    user: str
    count: int
    revoked: list[TokenOut]


class AuditEntryOut(_Out):
    id: int
    at: str
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None
    prev_hash: str
    hash: str


class AuditVerifyOut(_Out):
    ok: bool
    message: str


class ChipOut(_Out):
    """One term of the interpretation, which a UI can show and let the user remove."""

    kind: str
    text: str
    facets: list[str] | None = None
    negated: bool | None = None
    #: The region must show no other colour ("dressed all in black").
    only: bool | None = None


class SegmentOut(_Out):
    """One track of a grouped result: its times and where to play or download it."""

    track_id: int
    start: float | str
    end: float | str
    thumbnail_url: str
    playback_url: str
    clip_url: str


class HitOut(_Out):
    track_id: int
    camera: str
    label: str
    #: Seconds into the file, or an ISO time for a live camera.
    start: float | str
    end: float | str
    recorded_start: str | None
    score: float
    match: str
    explanation: list[dict[str, Any]]
    frame: int | None
    box: list[float] | None
    thumbnail_url: str | None
    #: The tracks grouped into this result (one person on one camera), in time order.
    segments: list[SegmentOut] = []


class SearchOut(_Out):
    query: str
    interpretation: str
    chips: list[ChipOut]
    notes: list[str]
    limit: int
    offset: int
    candidates: int
    full_matches: int
    hits: list[HitOut]
    #: "More like this": the track compared with (its picture and segments).
    reference: HitOut | None = None


class TrackItemOut(_Out):
    id: int
    camera: str
    source: str
    label: str
    start: float | str | None
    end: float | str | None
    observations: int
    confidence: float
    heading: str | None
    thumbnail_url: str | None


class TrackOut(_Out):
    id: int
    camera: str
    source: str
    local_id: int
    label: str
    start: float
    end: float
    first_frame: int
    last_frame: int
    observations: int
    confidence: float
    heading: str | None
    thumbnails: list[str]


class BoxOut(_Out):
    #: Seconds into the clip.
    t: float
    #: x1, y1, x2, y2 as fractions of the picture.
    box: list[float]
    track_id: int | None = None


class PlaybackOut(_Out):
    camera: str
    clip_url: str
    download_url: str
    clip_start_t: float
    offset: float
    end_offset: float
    duration: float
    max_duration: float
    truncated: bool
    width: int | None
    height: int | None
    masked: bool
    recorded_start: str | None
    boxes: list[BoxOut]


class TrackPlaybackOut(PlaybackOut):
    track_id: int
    label: str


class EventPlaybackOut(PlaybackOut):
    event_id: int
    type: str
    summary: str | None
    track_ids: list[int]


class EventOut(_Out):
    uid: str
    id: int
    type: str
    rule: str | None
    severity: str | None
    camera: str
    state: str
    start: str | None
    end: str | None
    start_t: float
    end_t: float | None
    zone: str | None
    line: str | None
    tracks: list[int]
    summary: str | None
    details: dict[str, Any]
    source: str | None
    clip: dict[str, Any] | None
    snapshot_url: str | None
    track_ids: list[int]
    acknowledged_at: str | None
    acknowledged_by: str | None


class AckOut(_Out):
    acknowledged: bool
    event: EventOut


class HealthStateOut(_Out):
    state: str
    fps_in: float
    fps_analysed: float
    lag_seconds: float
    last_frame_at: str | None
    reconnects: int | None
    error: str | None


class CameraOut(_Out):
    name: str
    kind: str
    enabled: bool
    in_config: bool
    #: Admins only, with any password redacted.
    url: str | None
    health: HealthStateOut | None
    #: The node that runs it (camsight run --node; its ``node:`` or ``nodes.default``); null: no node
    #: (with nodes in use, its health is then ``not-assigned``).
    node: str | None = None
    snapshot_url: str
    size: list[int] | None
    zones: dict[str, Any]
    lines: dict[str, Any]
    masks: dict[str, Any]
    rules: list[dict[str, Any]]


class JobOut(_Out):
    id: int
    kind: str
    camera: str
    file: str | None
    recorded_at: str | None
    state: str
    progress: float
    frames_done: int | None
    frames_total: int | None
    fps: float | None
    eta_seconds: float | None
    message: str | None
    error: str | None
    #: Tracks and events found so far, by class and by type.
    tracks: dict[str, int]
    events: dict[str, int]
    created_by: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobAnswerOut(_Out):
    job: JobOut


class CameraChangeOut(_Out):
    camera: CameraOut
    #: The re-indexing queued because zones, lines, masks or rules changed; null when none.
    job: JobOut | None


class ConfigOut(_Out):
    yaml: str
    file: str | None
    runtime_cameras: list[str]


class ConfigCheckOut(_Out):
    ok: bool
    errors: list[str] | None = None
