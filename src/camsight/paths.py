"""Where camsight keeps things: the data folder and the locations under it.

Part of the bottom layer: it imports nothing of camsight's, so every layer may use it.
``~`` is expanded here, once, for every path that comes from a user.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

DATA_ENV = "CAMSIGHT_DATA"
CONFIG_ENV = "CAMSIGHT_CONFIG"
MODELS_ENV = "CAMSIGHT_MODELS"
#: The config file inside a data folder: what `camsight run` and the web app edit.
CONFIG_NAME = "config.yaml"


def default_data_dir() -> Path:
    """``CAMSIGHT_DATA`` if set, else the per-user data folder (e.g. ~/.local/share/camsight)."""
    value = os.environ.get(DATA_ENV)
    if value:
        return Path(value).expanduser()
    return user_data_dir()


def recordings_dir(data_dir: Path, configured: Path | None) -> Path:
    """The recordings folder: ``storage.recordings`` (``~`` expanded), else ``<data>/recordings``.

    Every reader and writer of footage asks here, so a ``~/footage`` setting is
    the same folder for the recorder, retention and clip export.

    >>> recordings_dir(Path("/srv/cam"), None).as_posix()
    '/srv/cam/recordings'
    >>> recordings_dir(Path("/srv/cam"), Path("~/footage")) == Path.home() / "footage"
    True
    """
    return Path(configured).expanduser() if configured else Path(data_dir) / "recordings"


def uploads_dir(data_dir: Path, configured: Path | None) -> Path:
    """The uploads folder: ``uploads.folder`` (``~`` expanded), else ``<data>/uploads``.

    >>> uploads_dir(Path("/srv/cam"), None).as_posix()
    '/srv/cam/uploads'
    """
    return Path(configured).expanduser() if configured else Path(data_dir) / "uploads"


def user_data_dir() -> Path:
    """The per-user data folder (e.g. ~/.local/share/camsight), whatever ``CAMSIGHT_DATA`` says."""
    from platformdirs import user_data_path

    return user_data_path("camsight", appauthor=False)


def models_search_dirs() -> list[Path]:
    """Where model files are looked for: ``CAMSIGHT_MODELS`` alone when set, else the data folder's
    ``models/`` and then the per-user one (where set-up installs the default detector), so a store
    kept elsewhere (``CAMSIGHT_DATA``) still finds the installed models.
    """
    value = os.environ.get(MODELS_ENV)
    if value:
        return [Path(value).expanduser()]
    dirs = [default_data_dir() / "models", user_data_dir() / "models"]
    return list(dict.fromkeys(dirs))


def default_models_dir() -> Path:
    """``CAMSIGHT_MODELS`` if set, else ``<data dir>/models`` (where ``camsight models pull`` installs).

    >>> default_models_dir()          # doctest: +SKIP
    PosixPath('/home/ana/.local/share/camsight/models')
    """
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).expanduser()
    return default_data_dir() / "models"


#: Where a live camera's worker keeps its latest (masked) picture, under the media folder.
LATEST_FOLDER = "cameras"
LATEST_NAME = "latest.jpg"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def camera_media_dir(media: Path, camera: str) -> Path:
    """``<media>/cameras/<camera>``: the camera's own folder, safe whatever its name.

    A name that is not a plain file name (``../x``, slashes, control
    characters, very long) is replaced by a hash of it, so no name can point
    outside the folder.

    >>> camera_media_dir(Path("m"), "gate").as_posix(), camera_media_dir(Path("m"), "../x").name[:2]
    ('m/cameras/gate', '~-')
    """
    if _SAFE_NAME.match(camera):
        return media / LATEST_FOLDER / camera
    digest = hashlib.sha256(camera.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return media / LATEST_FOLDER / f"~-{digest}"


def latest_frame_path(media: Path, camera: str) -> Path:
    """The JPEG a live camera's worker refreshes every few seconds (privacy masks applied)."""
    return camera_media_dir(media, camera) / LATEST_NAME
