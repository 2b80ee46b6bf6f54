"""Where camsight keeps things: the data folder and the locations under it.

Part of the bottom layer: it imports nothing of camsight's, so every layer may use it.
``~`` is expanded here, once, for every path that comes from a user.
"""

from __future__ import annotations

import os
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
    from platformdirs import user_data_path

    return user_data_path("camsight", appauthor=False)


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


def default_models_dir() -> Path:
    """``CAMSIGHT_MODELS`` if set, else ``<data dir>/models`` (where ``camsight models pull`` installs).

    >>> default_models_dir()          # doctest: +SKIP
    PosixPath('/home/ana/.local/share/camsight/models')
    """
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).expanduser()
    return default_data_dir() / "models"
