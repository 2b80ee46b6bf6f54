"""Made clips, kept under the media folder and made once each.

:class:`ClipCache` keeps made clips (bounded in bytes and files, least
recently used evicted first), makes each one once even when requests race (a
lock per key, across threads and processes) and publishes it under its final
name only when complete. :func:`cached_clip` is what the API calls: the
footage's clip from the cache, made by :func:`camsight.media.track_clip.write_clip`
on a miss.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from camsight.media.clip import ClipError
from camsight.media.track_clip import (
    ClipInfo,
    ClipWindow,
    Footage,
    FootageUnavailable,
    live_window,
    wall_window,
    write_clip,
)
from camsight.store.models import Camera, RecordingRow

if TYPE_CHECKING:
    from camsight.config import CameraConfig
    from camsight.store.db import Store

log = logging.getLogger(__name__)

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
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}-[0-9]{1,20}$")


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
        start_at, end_at = wall_window(footage, window.start, window.end)
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
