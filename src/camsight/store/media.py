"""Files under the data directory's media folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from camsight.errors import StoreError


def source_media_dir(media: Path, source_id: int) -> Path:
    return media / "sources" / str(source_id)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    """Write atomically, so a crash never leaves a half-written thumbnail."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StoreError(f"cannot encode thumbnail {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None


def remove_source_media(media: Path, source_id: int) -> None:
    shutil.rmtree(source_media_dir(media, source_id), ignore_errors=True)
