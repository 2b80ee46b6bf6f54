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

:class:`ClipCache` keeps made clips under the media folder (bounded in
bytes and files, least recently used evicted first), makes each one once
even when requests race (a lock per key, across threads and processes) and
publishes it under its final name only when complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
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
#: Bump when the way clips are made changes, so cached ones are made again.
FORMAT_VERSION = 1
#: Cache bounds (least recently used clips go first).
CACHE_MAX_BYTES = 2 * 1024**3
CACHE_MAX_FILES = 500
#: A clip used this recently is never evicted: it may be being sent right now.
CACHE_KEEP_RECENT_S = 120.0
#: Leftovers of a crashed encode older than this are removed.
STALE_PARTIAL_S = 3600.0
#: Lock stripes: keys share this many lock files, so lock files never pile up.
LOCK_STRIPES = 32
_EPS = 1e-6
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}-[0-9]{1,20}$")


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


def _wall(footage: Footage, start: float, end: float) -> tuple[datetime, datetime]:
    """The wall-clock span of source seconds ``start``..``end`` (never past now: no footage exists yet)."""
    assert footage.wallclock_start is not None
    wall0 = footage.wallclock_start
    wall0 = aware(wall0)
    return wall0 + timedelta(seconds=start), min(wall0 + timedelta(seconds=end), datetime.now(UTC))


def live_window(footage: Footage, window: ClipWindow) -> ClipWindow:
    """``window`` cut at the present for footage that only recordings hold (a live camera)."""
    if footage.file is not None or footage.wallclock_start is None:
        return window
    start_at, end_at = _wall(footage, window.start, window.end)
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
    start_at, end_at = _wall(footage, start, end)
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


# --------------------------------------------------------------------------- the cache


def clip_key(footage: Footage, window: ClipWindow, camera_config: CameraConfig | None) -> dict[str, Any]:
    """Everything a clip's pixels depend on: the footage, the window and the privacy masks."""
    masks = {}
    if camera_config is not None:
        masks = {name: zone.model_dump(mode="json") for name, zone in sorted(camera_config.masks.items())}
    return {
        "v": FORMAT_VERSION,
        "camera": footage.camera,
        "file": str(footage.file) if footage.file is not None else None,
        "fingerprint": footage.fingerprint,
        "wallclock_start": footage.wallclock_start.isoformat() if footage.wallclock_start else None,
        "start": round(window.start, 3),
        "end": round(window.end, 3),
        "masks": masks,
    }


class ClipCache:
    """Clips kept in ``folder`` as ``<name>-<key hash>.mp4`` plus a ``.json`` describing each.

    ``name`` says what the clip is of (``track-12``); a new clip of the same
    name (other masks, another window) replaces the old one, so footage made
    under an older mask configuration is not kept. The ``.mp4`` appears only
    when complete (written under a temporary name, then renamed).
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = CACHE_MAX_BYTES,
        max_files: int = CACHE_MAX_FILES,
        keep_recent_s: float = CACHE_KEEP_RECENT_S,
    ) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.keep_recent_s = keep_recent_s

    def get(self, name: str, key: Mapping[str, Any], make: Callable[[Path], ClipInfo]) -> ClipInfo:
        """The cached clip for ``name`` and ``key``, else what ``make(tmp_path)`` writes (then kept).

        Concurrent callers wanting the same clip wait for one ``make``; the
        others then find it in the cache.
        """
        if not _NAME.match(name):
            raise ValueError(f"a clip name is like 'track-12', got {name!r}")
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        stem = f"{name}-{digest}"
        found = self._read(stem)
        if found is not None:
            return found
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClipError(f"cannot create the clip folder {self.folder}: {exc.strerror}") from None
        with self._lock(digest):
            found = self._read(stem)
            if found is not None:
                return found
            tmp = self.folder / f".{stem}.{uuid.uuid4().hex[:8]}.partial.mp4"
            final = self.folder / f"{stem}.mp4"
            try:
                info = make(tmp)
                _write_json(self.folder / f"{stem}.json", info.to_json())
                os.replace(tmp, final)
            except OSError as exc:
                raise ClipError(f"cannot keep the clip {final.name}: {exc.strerror or exc}") from None
            finally:
                tmp.unlink(missing_ok=True)
            self._drop_others(name, stem)
            self.evict(keep=final)
            return replace(info, path=final)

    def _read(self, stem: str) -> ClipInfo | None:
        mp4 = self.folder / f"{stem}.mp4"
        try:
            data = json.loads((self.folder / f"{stem}.json").read_text())
            info = ClipInfo.from_json(mp4, data)
            # Marks it as recently used: eviction takes the least recently used first.
            os.utime(mp4)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return info

    @contextlib.contextmanager
    def _lock(self, digest: str) -> Iterator[None]:
        # flock locks an open file description: it excludes other threads (each opens its own)
        # as well as other processes (several API workers, the CLI).
        locks = self.folder / ".locks"
        locks.mkdir(exist_ok=True)
        stripe = int(digest[:8], 16) % LOCK_STRIPES
        with open(locks / f"{stripe:02d}.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _drop_others(self, name: str, stem: str) -> None:
        for old in self.folder.glob(f"{name}-*.mp4"):
            if old.stem != stem and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{20}}", old.stem):
                _remove(old)

    def drop(self, name: str) -> None:
        """Remove every cached clip of ``name`` (its footage is gone)."""
        if _NAME.match(name) and self.folder.is_dir():
            self._drop_others(name, "")

    def evict(self, keep: Path | None = None) -> int:
        """Remove least recently used clips beyond the bounds (and stale partial files); returns how many."""
        now = time.time()
        entries = []
        for path in self.folder.iterdir():
            try:
                st = path.stat()
            except OSError:
                continue
            if path.name.endswith(".partial.mp4"):
                if now - st.st_mtime > STALE_PARTIAL_S:
                    path.unlink(missing_ok=True)
            elif path.suffix == ".mp4" and not path.name.startswith("."):
                entries.append((st.st_mtime, st.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        count = len(entries)
        removed = 0
        for mtime, size, path in entries:
            if total <= self.max_bytes and count <= self.max_files:
                break
            if path == keep or now - mtime < self.keep_recent_s:
                continue
            _remove(path)
            total -= size
            count -= 1
            removed += 1
        return removed


def _remove(mp4: Path) -> None:
    mp4.unlink(missing_ok=True)
    mp4.with_suffix(".json").unlink(missing_ok=True)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cached_clip(
    store: Store,
    footage: Footage,
    window: ClipWindow,
    *,
    name: str,
    camera_config: CameraConfig | None,
    recordings_root: Path,
    cache: ClipCache | None = None,
) -> ClipInfo:
    """The clip of ``footage`` over ``window`` from the cache (default: ``media/clips``), made if missing.

    ``name`` (``track-12``, ``event-3``) names the cached file. Raises like :func:`write_clip`.
    """
    cache = cache or ClipCache(store.media / "clips")
    window = live_window(footage, window)
    gone = _gone(store, footage, window)
    if gone is not None:
        # Footage deleted at the source (or by retention) is not kept alive by the cache either.
        cache.drop(name)
        raise FootageUnavailable(gone)
    key = clip_key(footage, window, camera_config)

    def make(tmp: Path) -> ClipInfo:
        return write_clip(
            store,
            footage,
            window.start,
            window.end,
            tmp,
            camera_config=camera_config,
            recordings_root=recordings_root,
        )

    return cache.get(name, key, make)


def _gone(store: Store, footage: Footage, window: ClipWindow) -> str | None:
    """Why the footage no longer exists (None: it may), cheaply: a file's presence, recordings' rows."""
    if footage.file is not None and footage.file.is_file():
        return None
    if footage.wallclock_start is not None:
        start_at, end_at = _wall(footage, window.start, window.end)
        with store.sessions() as session:
            found = session.execute(
                select(RecordingRow.id)
                .join(Camera, Camera.id == RecordingRow.camera_id)
                .where(Camera.name == footage.camera, RecordingRow.start_at < end_at)
                .where((RecordingRow.end_at.is_(None)) | (RecordingRow.end_at > start_at))
                .limit(1)
            ).first()
        if found is not None:
            return None
    return "the source file is missing" if footage.file is not None else "no recording covers it"
