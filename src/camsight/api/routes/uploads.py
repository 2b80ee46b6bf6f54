"""Uploading a video to index, and the indexing jobs with their progress (operators and admins).

``POST /uploads`` streams the multipart body straight to
``<uploads>/<uuid>/<safe name>`` in chunks (never the whole file in memory),
checks that it is a video, and queues an indexing job. Whatever is rejected
(too large, empty, not a video, a bad camera, a broken or interrupted body)
leaves nothing on disk.
"""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import av
import av.error
from fastapi import APIRouter, Depends, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from camsight.api.deps import (
    PageDep,
    PageOut,
    RowId,
    StoreDep,
    can_see,
    client_ip,
    declared_length,
    not_found_camera,
    page_out,
    require,
)
from camsight.api.errors import ApiError
from camsight.api.schemas import JobAnswerOut, JobOut, PageOf, errors
from camsight.auth import audit
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.config import Config
from camsight.errors import SourceError
from camsight.service.jobs import Job, JobRunner, NotRetryable
from camsight.service.uploads import remove_upload_folder, uploads_folder
from camsight.sources.video_file import VideoFile, picture_format
from camsight.store.db import Store
from camsight.timeutil import parse_when

log = logging.getLogger(__name__)
router = APIRouter(tags=["uploads"])
#: Uploading footage and following its indexing: whoever may view clips (operators and admins).
Uploader = Annotated[Principal, Depends(require(Permission.VIEW_CLIPS))]

DEFAULT_CAMERA = "uploads"
CAMERA_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIB = 1024 * 1024
#: Room in the body for the multipart framing and the small form fields beside the file.
FORM_SLACK = 64 * 1024
#: Longest text form field (the camera name) accepted.
MAX_FIELD = 1024
#: Text form fields beside ``file``.
FIELDS = ("camera", "recorded_at")
#: How far ahead of the server's clock a recording may say it started (clocks of uploaders drift).
FUTURE_SLACK = timedelta(hours=1)
#: Earliest start time accepted: anything before is a typo, not footage.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
#: Longest stored file name, in characters (file systems allow 255 bytes).
MAX_NAME = 120


class _TooLarge(Exception):
    """The body went past the limit while streaming (a wrong Content-Length, or chunked)."""


# --------------------------------------------------------------------------- names


def safe_filename(name: str, default: str = "video") -> str:
    """A file name safe to store: no folders, no control characters, no leading dots, bounded length.

    Readable names (letters of any script, digits, spaces, ``._-()+``) stay as
    they are; anything else becomes ``_``.

    >>> safe_filename("../../etc/passwd"), safe_filename("C:\\\\clips\\\\Kamera Süd.mp4")
    ('passwd', 'Kamera Süd.mp4')
    >>> safe_filename("evil\\x00.mp4"), safe_filename(".."), safe_filename("a/b/.hidden.avi")
    ('evil_.mp4', 'video', 'hidden.avi')
    """
    name = unicodedata.normalize("NFC", name)
    # A hostile (or old) client may send a path: keep only its last part, for / and \ alike.
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c if (c.isalnum() or c in "._-()+ ") and c.isprintable() else "_" for c in name)
    # No hidden files, no "." or "..", no trailing dots or spaces.
    name = name.strip(" .")
    if not name or set(name) <= {"_"}:
        return default
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        name = name[: MAX_NAME - len(ext) - 1].rstrip(" .") + ("." + ext if ext else "")
    return name


def check_camera_name(name: str) -> str:
    """``name`` if it is a valid camera name for uploads, else a 422 saying what is allowed."""
    if not CAMERA_NAME.fullmatch(name):
        raise ApiError(
            422,
            "camera: a name of 1 to 64 letters, digits, '-', '_' or '.' is required",
            code="validation_error",
        )
    return name


def parse_recorded_at(text: str, now: datetime | None = None) -> datetime:
    """The start time of an upload: ISO 8601, UTC unless it has an offset; else a 422 with the reason.

    >>> parse_recorded_at("2026-11-20T18:00:00+01:00").isoformat()
    '2026-11-20T17:00:00+00:00'
    >>> parse_recorded_at("2026-11-20 18:00").isoformat()
    '2026-11-20T18:00:00+00:00'
    """
    try:
        when = parse_when(text, naive="utc", durations="no").astimezone(UTC)
    except ValueError:
        raise ApiError(
            422,
            "recorded_at: an ISO 8601 date and time such as 2026-11-20T18:00:00+01:00 is required, "
            f"got {text.strip()[:64]!r}",
            code="validation_error",
        ) from None
    now = now or datetime.now(UTC)
    if when > now + FUTURE_SLACK:
        raise ApiError(422, "recorded_at is in the future", code="validation_error")
    if when < EARLIEST:
        raise ApiError(422, f"recorded_at is before {EARLIEST.year}", code="validation_error")
    return when


def _check_camera_access(principal: Principal, name: str) -> None:
    """A user limited to some cameras uploads only to those; others to any camera, new ones too."""
    if not can_see(principal, name):
        # The same answer as for a missing camera: nothing about other cameras leaks.
        raise not_found_camera(name)


# --------------------------------------------------------------------------- the body


class _Receiver:
    """Callbacks of the streaming multipart parser: the file part goes straight to disk.

    Runs in a worker thread (``parser.write``), so disk writes never block the event loop.
    """

    def __init__(self, folder: Path, limit: int, before_file: Callable[[dict[str, str]], None]) -> None:
        self.folder = folder
        self.limit = limit
        self.before_file = before_file
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.file_name: str | None = None
        self.size = 0
        self._fh: Any = None
        self._name = ""
        self._is_file = False
        self._field = bytearray()
        self._header_name = b""
        self._header_value = b""
        self._disposition: bytes | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._disposition = None
        self._field = bytearray()
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ApiError(400, "a form part has no name (Content-Disposition)", code="validation_error")
        self._name = _text(options[b"name"])
        if b"filename" in options:
            if self._name != "file":
                raise ApiError(400, f"unexpected file field {self._name[:64]!r}; send the video as 'file'")
            if self.path is not None:
                raise ApiError(400, "send one file per upload")
            self.before_file(self.fields)
            self.file_name = safe_filename(_text(options[b"filename"]))
            self.folder.mkdir(parents=True)
            self.path = self.folder / self.file_name
            # The name was cleaned; check anyway that it stays inside the upload's own folder.
            if self.path.resolve().parent != self.folder.resolve():
                raise ApiError(400, "invalid file name")
            self._fh = self.path.open("xb")
            self._is_file = True
        elif self._name == "file":
            raise ApiError(400, "'file' must be a file (multipart part with a filename)")
        elif self._name not in FIELDS:
            raise ApiError(400, f"unknown form field {self._name[:64]!r} (fields: file, {', '.join(FIELDS)})")
        elif self._name in self.fields:
            raise ApiError(400, f"form field {self._name!r} given twice")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size > self.limit:
                raise _TooLarge
            self._fh.write(data[start:end])
        else:
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD:
                raise ApiError(400, f"form field {self._name!r} is too long")

    def on_part_end(self) -> None:
        if self._is_file:
            self._fh.close()
            self._fh = None
        else:
            self.fields[self._name] = _text(bytes(self._field))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _text(value: bytes) -> str:
    # Header parameters arrive as latin-1 text of what browsers send as UTF-8.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _probe(path: Path) -> None:
    """Raise 415 unless ``path`` holds a video stream whose first frames decode."""
    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        fmt = ""  # VideoFile below gives the reason
    if fmt == "tty":
        # FFmpeg's demuxer of last resort shows text files as ANSI art.
        raise ApiError(415, "not a video file: text, not a video")
    picture = picture_format(fmt)
    if picture is not None:
        raise ApiError(415, f"not a video file: a still picture ({picture}), not a video")
    try:
        with VideoFile(path) as video:
            decoded = 0
            for _frame in video.frames(None):
                decoded += 1
                if decoded >= 2:
                    return
    except SourceError as exc:
        # The reason without the server's path: "not a readable video (Invalid data found ...)".
        reason = str(exc).splitlines()[0].removeprefix(f"{path}: ")
        raise ApiError(415, f"not a video file: {reason}") from None
    raise ApiError(415, "not a video file: a single picture, not a video")


def _limit_mb(config: Config) -> str:
    return f"{config.uploads.max_mb:g} MB"


def _runner(request: Request) -> JobRunner:
    return request.app.state.jobs


# --------------------------------------------------------------------------- endpoints

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The video file."},
                        "camera": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9._-]{1,64}$",
                            "default": DEFAULT_CAMERA,
                            "description": "Camera the footage belongs to (an existing one, or a new name).",
                        },
                        "recorded_at": {
                            "type": "string",
                            "format": "date-time",
                            "description": "When the recording started (ISO 8601; UTC unless it has an "
                            "offset). Default: the file's creation_time tag, else the upload time minus "
                            "its length. Search by time uses it.",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/uploads",
    response_model=JobAnswerOut,
    status_code=202,
    openapi_extra=_UPLOAD_BODY,
    responses=errors(
        404,
        413,
        415,
        422,
        503,
        507,
        s404="The camera is one the caller may not see.",
        s413="The file is larger than the upload limit.",
        s415="Not a video file, or not a multipart/form-data body.",
        s422="Empty file, invalid camera name or recorded_at.",
        s503="The upload folder cannot be used.",
    ),
)
async def upload(request: Request, principal: Uploader, store: StoreDep) -> dict[str, Any]:
    """Upload a video (multipart ``file``, optional ``camera`` and ``recorded_at``) and queue its indexing.

    Audited as ``upload``; a refused upload as ``upload.refused`` with the reason.

    Answers 202 with the queued job; follow it with ``GET /jobs/{id}``.
    """
    seen: dict[str, Any] = {}
    try:
        return await _upload(request, principal, store, seen)
    except ApiError as exc:
        # Who tried to bring in what, and why it was turned away: a refusal is part of the record too.
        audit.record(
            store,
            principal.actor(client_ip(request)),
            audit.Action.UPLOAD_REFUSED,
            target=seen.get("camera"),
            detail={"status": exc.status_code, "reason": exc.detail, **seen},
        )
        raise


async def _upload(
    request: Request, principal: Principal, store: Store, seen: dict[str, Any]
) -> dict[str, Any]:
    """The upload itself; ``seen`` collects what is known of it (file, bytes, camera) for the audit."""
    config: Config = request.app.state.config
    limit = int(config.uploads.max_mb * MIB)
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(415, f"send the video as multipart/form-data (fields: file, {', '.join(FIELDS)})")
    declared = declared_length(
        request, limit + FORM_SLACK, f"the file is larger than the upload limit of {_limit_mb(config)}"
    )
    root = uploads_folder(store, config)
    try:
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
    except OSError as exc:
        log.error("upload folder %s cannot be used: %s", root, exc)
        raise ApiError(503, "the upload folder cannot be used; see the server log") from None
    keep_free = int(config.storage.min_free_gb * 1e9)
    if free - (declared or 0) < keep_free:
        raise ApiError(507, "not enough free disk space for this upload", code="insufficient_storage")

    checked: dict[str, Any] = {}

    def fields_ok(fields: dict[str, str], final: bool = False) -> None:
        # Called when the file part starts and after the body: fields that come before the file
        # (as forms send them) are refused before the file is stored.
        if "camera" not in checked and ("camera" in fields or final):
            name = check_camera_name(fields.get("camera") or DEFAULT_CAMERA)
            _check_camera_access(principal, name)
            seen["camera"] = name
            checked["camera"] = name
        if "recorded_at" not in checked and ("recorded_at" in fields or final):
            text = fields.get("recorded_at", "").strip()
            checked["recorded_at"] = parse_recorded_at(text) if text else None

    folder = root / uuid.uuid4().hex
    receiver = _Receiver(folder, limit, fields_ok)
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit + FORM_SLACK:
                    raise _TooLarge
                if chunk:
                    await anyio.to_thread.run_sync(parser.write, chunk)
            await anyio.to_thread.run_sync(parser.finalize)
        except _TooLarge:
            raise ApiError(413, f"the file is larger than the upload limit of {_limit_mb(config)}") from None
        except FormParserError:
            raise ApiError(400, "malformed multipart/form-data body") from None
        except ClientDisconnect:
            raise ApiError(400, "the upload was interrupted") from None
        except OSError as exc:
            # Typically a full disk while a chunked upload of unknown size streams in.
            log.error("cannot store an upload in %s: %s", folder, exc)
            raise ApiError(
                507, "the upload could not be stored (is the disk full?)", code="insufficient_storage"
            ) from None
        finally:
            receiver.close()
            if receiver.file_name is not None:
                seen.update(file=receiver.file_name, bytes=receiver.size)
        fields_ok(receiver.fields, final=True)
        if receiver.path is None:
            raise ApiError(400, "no file in the upload (send the video in the form field 'file')")
        if receiver.size == 0:
            raise ApiError(422, "the file is empty", code="validation_error")
        await anyio.to_thread.run_sync(_probe, receiver.path)
        assert receiver.file_name is not None
        job = _runner(request).submit_index(
            receiver.path,
            checked["camera"],
            by=principal.name,
            file=receiver.file_name,
            owns_file=True,
            recorded_at=checked["recorded_at"],
        )
    except BaseException:
        # Nothing of a rejected or broken upload stays on disk.
        remove_upload_folder(folder)
        raise
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.UPLOAD,
        target=job.camera,
        detail={
            "file": job.file,
            "bytes": receiver.size,
            "job_id": job.id,
            **({"recorded_at": job.recorded_at.isoformat()} if job.recorded_at else {}),
        },
    )
    return {"job": job.to_dict()}


@router.get("/jobs", response_model=PageOf[JobOut])
def list_jobs(request: Request, principal: Uploader, store: StoreDep, page: PageDep) -> PageOut:
    """Indexing jobs of the caller's cameras, newest first."""
    scope = principal.camera_scope()
    # A limited user sees jobs of their cameras, whether or not the camera exists yet (a queued upload).
    cameras = None if scope is None else sorted(scope)
    jobs, total = _runner(request).list(cameras=cameras, limit=page.limit, offset=page.offset)
    return page_out([j.to_dict() for j in jobs], total, page)


def _visible_job(request: Request, job_id: int, principal: Principal) -> Job:
    job = _runner(request).get(job_id)
    scope = principal.camera_scope()
    if job is None or (scope is not None and job.camera not in scope):
        # Another camera's job answers exactly like a missing one.
        raise ApiError(404, f"no job with id {job_id}")
    return job


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors(404))
def get_job(request: Request, job_id: RowId, principal: Uploader) -> dict[str, Any]:
    """One job with its progress (``progress`` 0..1, ``fps``, ``eta_seconds``); ``error``: why it failed."""
    return _visible_job(request, job_id, principal).to_dict()


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobAnswerOut,
    status_code=202,
    responses=errors(
        403,
        404,
        409,
        410,
        s403="A camera's re-analysis needs manage_cameras, as editing its zones does.",
        s409="The job has not failed (queued, running or done).",
        s410="The job's file is no longer on the server: upload it again.",
    ),
)
def retry_job(request: Request, job_id: RowId, principal: Uploader, store: StoreDep) -> dict[str, Any]:
    """Run a failed job again, once its cause is fixed: ``{"job": job}``, queued (202).

    Who may start such a job may retry it: an upload's indexing, whoever may
    upload; a camera's re-analysis (queued by a zone edit), camera admins.
    Audited as ``job.retry``.
    """
    job = _visible_job(request, job_id, principal)
    if job.kind == "reindex" and not principal.can(Permission.MANAGE_CAMERAS):
        # The same permission as the zone edit that queued it.
        raise ApiError(
            403,
            f"your role ({principal.user.role}) may not manage cameras (re-analysing a camera's footage)",
        )
    try:
        queued = _runner(request).retry(job_id)
    except KeyError:
        raise ApiError(404, f"no job with id {job_id}") from None
    except NotRetryable as exc:
        raise ApiError(410 if exc.gone else 409, str(exc)) from None
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.JOB_RETRY,
        target=queued.camera,
        detail={
            "job_id": queued.id,
            "kind": queued.kind,
            **({"file": queued.file} if queued.file else {}),
            "failed_with": job.error,
        },
    )
    return {"job": queued.to_dict()}
