"""Clips of a track's (or an event's) footage that a browser can play: H.264 yuv420p MP4, masked, cached.

>>> footage = Footage(camera="lobby", file=Path("/videos/lobby.mp4"), fingerprint=None)  # doctest: +SKIP
>>> window = clip_window(track.start_t, track.end_t, padding=TRACK_PADDING)            # doctest: +SKIP
>>> info = write_clip(store, footage, window.start, window.end, Path("t12.mp4"),         # doctest: +SKIP
...                   camera_config=config.camera("lobby"), recordings_root=recordings)
>>> info.start_t, info.duration, (info.width, info.height)                              # doctest: +SKIP
(10.0, 14.1, (768, 576))

Footage comes from one of two places:

1. an indexed file that is still there (``Source.uri``): the window is
   decoded with PyAV (from the keyframe before it; frames before the window
   are dropped) and always encoded again, since browsers play neither AVI
   nor MJPEG;
2. a live camera's recordings: :func:`camsight.media.clip.export_clip` with
   the wall-clock window (the session's ``wallclock_start`` plus seconds).

Times are *source seconds* throughout, the clock of ``Track.start_t`` and of
the observations, so a caller can place boxes on the clip:
``clip time = source time - ClipInfo.start_t``. The camera's privacy masks
(config ``cameras.<name>.masks``) are blacked out in both cases, and a mask
that cannot be placed stops the clip rather than letting footage out
unmasked.

Made clips are cached by :mod:`camsight.media.clip_cache`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av
from sqlalchemy import select

from camsight.errors import NotFoundError
from camsight.media.clip import ClipError, Reencoder, export_clip, recording_mask
from camsight.media.masks import PrivacyMask
from camsight.sources.video_file import fingerprint as file_fingerprint
from camsight.store.models import Camera, RecordingRow
from camsight.timeutil import aware

if TYPE_CHECKING:
    from camsight.config import CameraConfig
    from camsight.store.db import Store

log = logging.getLogger(__name__)

#: Seconds of footage before and after a track in its clip.
TRACK_PADDING = 2.0
#: The longest clip made: a long track's clip shows its first two minutes.
MAX_CLIP_SECONDS = 120.0
_EPS = 1e-6


class FootageUnavailable(NotFoundError):
    """The footage for a clip is gone: ``reason`` says why in words fit for any client (no paths)."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(f"footage is no longer available ({reason})" + (f": {detail}" if detail else ""))
        self.reason = reason


@dataclass(frozen=True)
class Footage:
    """Where a camera's footage for a span of source seconds is.

    ``file`` is the indexed video file (None for a live session); ``fingerprint``
    its content id when indexed (checked before decoding, so a file replaced
    at the same path is not shown as this footage). ``wallclock_start`` is the
    wall-clock time of source second 0, which finds the span in the camera's
    recordings.
    """

    camera: str
    file: Path | None = None
    fingerprint: str | None = None
    wallclock_start: datetime | None = None


@dataclass(frozen=True)
class ClipWindow:
    """A span of source seconds to show; ``truncated`` when it was cut to ``MAX_CLIP_SECONDS``."""

    start: float
    end: float
    truncated: bool = False


@dataclass(frozen=True)
class ClipInfo:
    """A clip that was written: where, which source seconds it shows, and how."""

    path: Path
    #: Source seconds of the clip's first frame: clip time 0.
    start_t: float
    duration: float
    width: int
    height: int
    frames: int
    masked: bool
    origin: Literal["file", "recordings"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_json(cls, path: Path, data: Mapping[str, Any]) -> ClipInfo:
        return cls(
            path=path,
            start_t=float(data["start_t"]),
            duration=float(data["duration"]),
            width=int(data["width"]),
            height=int(data["height"]),
            frames=int(data["frames"]),
            masked=bool(data["masked"]),
            origin=data["origin"],
        )


def clip_window(
    start_t: float, end_t: float | None, *, padding: float, max_seconds: float = MAX_CLIP_SECONDS
) -> ClipWindow:
    """Source seconds from ``padding`` before ``start_t`` to ``padding`` after ``end_t`` (capped).

    The window is at most ``max_seconds`` long: a longer one keeps its beginning.

    >>> clip_window(10.0, 20.0, padding=2.0)
    ClipWindow(start=8.0, end=22.0, truncated=False)
    >>> clip_window(1.0, 500.0, padding=2.0, max_seconds=120.0)
    ClipWindow(start=0.0, end=120.0, truncated=True)
    """
    if not (math.isfinite(start_t) and (end_t is None or math.isfinite(end_t))):
        raise ValueError("a clip window needs finite times")
    start = max(0.0, start_t - padding)
    end = max(start_t, end_t if end_t is not None else start_t) + padding
    if end - start > max_seconds:
        return ClipWindow(start, start + max_seconds, True)
    return ClipWindow(start, end)


# --------------------------------------------------------------------------- making a clip


def write_clip(
    store: Store,
    footage: Footage,
    start: float,
    end: float,
    out: Path,
    *,
    camera_config: CameraConfig | None,
    recordings_root: Path,
) -> ClipInfo:
    """Write the footage from source second ``start`` to ``end`` to ``out`` (MP4, H.264 yuv420p, faststart).

    The indexed file is used when it is still there and unchanged, else the
    camera's recordings. ``camera_config``'s privacy masks are applied.
    Raises :class:`FootageUnavailable` when neither has the footage,
    :class:`~camsight.errors.ConfigError` when a mask does not fit the
    footage, :class:`~camsight.media.clip.ClipError` when ``out`` cannot be
    written. ``out`` is complete or absent afterwards.
    """
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ClipError(f"the end ({end}) must be after the start ({start})")
    problem: FootageUnavailable | None = None
    if footage.file is not None:
        try:
            return encode_file_window(
                footage.file,
                start,
                end,
                out,
                camera_config=camera_config,
                camera=footage.camera,
                expect_fingerprint=footage.fingerprint,
            )
        except FootageUnavailable as exc:
            problem = exc
            log.info("indexed file unusable for a clip", extra={"camera": footage.camera, "error": str(exc)})
    if footage.wallclock_start is not None and _has_recordings(store, footage.camera):
        return _from_recordings(store, footage, start, end, out, camera_config, recordings_root)
    raise problem or FootageUnavailable("no recording covers it")


def encode_file_window(
    path: Path,
    start: float,
    end: float,
    out: Path,
    *,
    camera_config: CameraConfig | None = None,
    camera: str = "camera",
    expect_fingerprint: str | None = None,
) -> ClipInfo:
    """Decode ``path`` from ``start`` to ``end`` (seconds from its first frame), mask, encode to ``out``.

    Seconds are counted as :class:`camsight.sources.video_file.VideoFile` counts
    them, so they match the indexed tracks. Raises :class:`FootageUnavailable`
    when the file is missing, unreadable, changed (``expect_fingerprint``) or
    has no frames in the window.
    """
    path = Path(path)
    if not path.is_file():
        raise FootageUnavailable("the source file is missing")
    if expect_fingerprint is not None:
        try:
            same = file_fingerprint(path) == expect_fingerprint
        except OSError as exc:
            raise FootageUnavailable("the source file cannot be read", exc.strerror) from None
        if not same:
            raise FootageUnavailable("the source file has changed since it was indexed")
    _check_writable(out)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial.mp4")
    try:
        try:
            source = av.open(str(path))
        except (OSError, av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise FootageUnavailable("the source file cannot be read", str(exc)) from None
        with source:
            if not source.streams.video:
                raise FootageUnavailable("the source file has no video")
            try:
                done = _transcode(source, start, end, tmp, camera_config, camera)
            except (OSError, av.FFmpegError) as exc:
                raise ClipError(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}") from None
        if done is None:
            raise FootageUnavailable(f"the source file has no frames between {start:.1f}s and {end:.1f}s")
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise ClipError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return ClipInfo(
        path=out,
        start_t=done.first,
        duration=max(0.0, done.last - done.first),
        width=done.size[0] - done.size[0] % 2,
        height=done.size[1] - done.size[1] % 2,
        frames=done.frames,
        masked=done.masked,
        origin="file",
    )


@dataclass(frozen=True)
class _Encoded:
    first: float
    last: float
    frames: int
    size: tuple[int, int]
    masked: bool


def _transcode(
    source: Any, start: float, end: float, tmp: Path, camera_config: CameraConfig | None, camera: str
) -> _Encoded | None:
    """Decode ``source`` over the window and encode it into ``tmp``; None when no frame falls in it."""
    stream = source.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    frame_s = 1.0 / float(rate)
    tb = float(stream.time_base) if stream.time_base else frame_s
    start_pts = stream.start_time or 0
    if start > 0:
        try:
            source.seek(int(start / tb) + start_pts, stream=stream, backward=True)
        except av.FFmpegError:
            log.info("cannot seek; decoding from the start", extra={"camera": camera})
    encoder: Reencoder | None = None
    mask: PrivacyMask | None = None
    size = (0, 0)
    with contextlib.ExitStack() as stack:
        for frame, t in _frames(source, stream, tb, start_pts, frame_s):
            if t + _EPS < start:
                continue
            if t >= end - _EPS:
                break
            if encoder is None:
                size = (frame.width, frame.height)
                if camera_config is not None and camera_config.masks:
                    # Raises ConfigError for a mask outside the frame (before anything is written):
                    # such footage is never encoded unmasked.
                    mask = PrivacyMask.for_camera(camera_config, size, camera)
                # Opened at the first frame: an MP4 without a stream cannot be closed cleanly.
                container = stack.enter_context(
                    av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
                )
                encoder = Reencoder(mask, None)
                encoder.begin(container, end, frame_s=frame_s)
            encoder.emit(frame, t)
        if encoder is None or encoder.count == 0:
            return None
        first, last = encoder.finish()
    return _Encoded(first, last, encoder.count, size, mask is not None)


def _frames(
    source: Any, stream: Any, tb: float, start_pts: int, frame_s: float
) -> Iterator[tuple[Any, float]]:
    """Decoded frames with their time in seconds, computed exactly as the indexer does."""
    last_t = -1.0
    bad = 0
    try:
        for packet in source.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                bad += 1  # a damaged packet: skip it, as a player would
                if bad > 50:
                    return
                continue
            for frame in frames:
                t = (frame.pts - start_pts) * tb if frame.pts is not None else last_t + frame_s
                if t <= last_t:
                    t = last_t + 1e-3
                last_t = t
                yield frame, t
    except av.FFmpegError as exc:
        # A truncated file: what came before the damage is still footage.
        log.info("source ends early", extra={"error": str(exc)})


def _check_writable(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ClipError(f"cannot write {out}: folder {parent} is missing or not writable")


def _has_recordings(store: Store, camera: str) -> bool:
    with store.sessions() as session:
        found = session.execute(
            select(RecordingRow.id)
            .join(Camera, Camera.id == RecordingRow.camera_id)
            .where(Camera.name == camera)
            .limit(1)
        ).first()
    return found is not None


def wall_window(footage: Footage, start: float, end: float) -> tuple[datetime, datetime]:
    """The wall-clock span of source seconds ``start``..``end`` (never past now: no footage exists yet)."""
    assert footage.wallclock_start is not None
    wall0 = footage.wallclock_start
    wall0 = aware(wall0)
    return wall0 + timedelta(seconds=start), min(wall0 + timedelta(seconds=end), datetime.now(UTC))


def live_window(footage: Footage, window: ClipWindow) -> ClipWindow:
    """``window`` cut at the present for footage that only recordings hold (a live camera)."""
    if footage.file is not None or footage.wallclock_start is None:
        return window
    start_at, end_at = wall_window(footage, window.start, window.end)
    wall0 = start_at - timedelta(seconds=window.start)
    end = (end_at - wall0).total_seconds()
    return replace(window, end=round(max(window.start, end), 3))


def _from_recordings(
    store: Store,
    footage: Footage,
    start: float,
    end: float,
    out: Path,
    camera_config: CameraConfig | None,
    recordings_root: Path,
) -> ClipInfo:
    start_at, end_at = wall_window(footage, start, end)
    if end_at <= start_at:
        raise FootageUnavailable("it has not been recorded yet")
    wall0 = start_at - timedelta(seconds=start)
    mask = recording_mask(store, footage.camera, camera_config, start_at, end_at)
    try:
        result = export_clip(
            store, footage.camera, start_at, end_at, out, recordings_root=recordings_root, mask=mask
        )
    except NotFoundError as exc:
        raise FootageUnavailable("no recording covers it", str(exc)) from None
    try:
        with av.open(str(out)) as container:
            ctx = container.streams.video[0].codec_context
            width, height = ctx.width, ctx.height
    except (OSError, av.FFmpegError, IndexError) as exc:
        out.unlink(missing_ok=True)
        raise ClipError(f"the clip written to {out} cannot be read back: {exc}") from None
    return ClipInfo(
        path=out,
        start_t=(result.start_at - wall0).total_seconds(),
        duration=result.duration,
        width=width,
        height=height,
        frames=result.frames,
        masked=result.masked,
        origin="recordings",
    )
