"""A camera's current picture as users may see it: privacy masks blanked, JPEG-encoded.

A live camera's worker saves its latest frame every few seconds; for a camera
known only from indexed files, a frame a little way into the newest file still
on disk stands in (cached per file and mask set).

>>> camera_picture(store, "lobby", config.camera("lobby"))  # doctest: +SKIP
b'\\xff\\xd8...'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
from sqlalchemy import select

from camsight.config import CameraConfig
from camsight.errors import CamsightError, ConfigError
from camsight.media.masks import PrivacyMask
from camsight.paths import camera_media_dir, latest_frame_path
from camsight.store.db import Store
from camsight.store.models import Camera, Source

log = logging.getLogger(__name__)

#: Seconds into a file its stand-in picture is taken from (the very first frame is often black).
SNAPSHOT_AT = 2.0
JPEG_QUALITY = 85


class MaskNotApplicable(CamsightError):
    """The camera's privacy masks cannot be placed on the picture: it must not be shown."""


def masked_jpeg(image: np.ndarray, cam: CameraConfig | None, name: str) -> bytes | None:
    """``image`` with ``cam``'s masks blanked, as JPEG (None if it cannot be encoded)."""
    if cam is not None and cam.masks:
        h, w = image.shape[:2]
        try:
            mask = PrivacyMask.for_camera(cam, (w, h), name)
        except ConfigError as exc:
            # Privacy first: a picture whose masks cannot be applied is not shown at all.
            raise MaskNotApplicable(f"cannot apply the camera's privacy masks: {exc}") from None
        if mask is not None:
            image = mask.apply(image)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return jpeg.tobytes() if ok else None


def frame_of(path: Path) -> np.ndarray | None:
    """A BGR frame from ``SNAPSHOT_AT`` seconds into the video (or its middle), None if unreadable."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            duration = float(container.duration / 1_000_000) if container.duration else None
            at = min(SNAPSHOT_AT, duration / 2) if duration else 0.0
            if at > 0 and stream.time_base:
                container.seek(int(at / float(stream.time_base)), stream=stream, backward=True)
            picked = None
            for n, frame in enumerate(container.decode(stream)):
                picked = frame
                if (frame.time is not None and frame.time >= at) or n >= 300:
                    break
            return picked.to_ndarray(format="bgr24") if picked is not None else None
    except (av.error.FFmpegError, OSError, IndexError, ValueError):
        return None


def live_picture(store: Store, name: str, cam: CameraConfig | None) -> bytes | None:
    """The latest frame a live camera's worker saved, masked with the masks in force now."""
    latest = latest_frame_path(store.media, name)
    if cam is None or not cam.url or not latest.is_file():
        return None
    try:
        raw = latest.read_bytes()
    except OSError:
        return None
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) if raw else None
    # The worker masked it already; masking again applies masks changed since it was saved.
    return masked_jpeg(image, cam, name) if image is not None else None


def file_picture(store: Store, name: str, cam: CameraConfig | None) -> bytes | None:
    """A masked frame of the camera's newest indexed file still on disk, cached per file and masks."""
    with store.sessions() as session:
        sources = session.execute(
            select(Source.id, Source.uri)
            .join(Camera, Camera.id == Source.camera_id)
            .where(Camera.name == name, ~Source.fingerprint.startswith("live:"))
            .order_by(Source.id.desc())
            .limit(20)
        ).all()
    shapes = {k: v.model_dump(mode="json") for k, v in cam.masks.items()} if cam is not None else {}
    key = hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:16]
    folder = camera_media_dir(store.media, name)
    for source_id, uri in sources:
        path = Path(uri)
        if not path.is_file():
            continue
        cached = folder / f"file-{source_id}-{key}.jpg"
        try:
            return cached.read_bytes()
        except OSError:
            pass
        image = frame_of(path)
        if image is None:
            continue
        jpeg = masked_jpeg(image, cam, name)
        if jpeg is not None:
            _cache(folder, cached, jpeg)
            return jpeg
    return None


def camera_picture(store: Store, name: str, cam: CameraConfig | None) -> bytes | None:
    """The live picture if the camera runs and has saved one, else a frame of its files; None if neither.

    Raises :class:`MaskNotApplicable` rather than hand out a picture its masks do not cover.
    """
    return live_picture(store, name, cam) or file_picture(store, name, cam)


def _cache(folder: Path, path: Path, data: bytes) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("file-*.jpg"):  # one cached picture per camera: older ones are stale
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".snap.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        log.warning("cannot cache a camera snapshot", exc_info=True)
