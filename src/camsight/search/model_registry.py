"""Known models and their pinned downloads: the default detector and the vision-language plug-ins.

The registry maps a model name to the files of its folder, each with a URL,
a size and a SHA-256 that were published for exactly that file, plus (for a
vision-language model) the ``manifest.json`` to write next to them. :func:`pull` downloads a model into
a hidden staging folder, checks every byte count and checksum, and only then
renames the folder into place, so an interrupted or corrupt download never
leaves a half model behind.

The built-in registry is ``models.json`` beside this module.
``CAMSIGHT_MODEL_REGISTRY=/path/registry.json`` replaces it with a file of
the same schema (a mirror inside an air-gapped site, another model)::

    {"schema": 1,
     "models": {
       "tiny": {
         "description": "a test model",
         "files": [{"name": "image.onnx", "url": "http://mirror/image.onnx",
                    "size": 1234, "sha256": "<64 hex digits>"}, ...],
         "manifest": {"name": "tiny", "dim": 8, "image": {...}, "text": {...}}}}}

Example::

    >>> registry = load_registry()
    >>> entry = registry.get("clip-vit-b32")
    >>> pull(entry, default_models_dir())            # doctest: +SKIP
    PullResult(folder=PosixPath('.../models/clip-vit-b32'), status='installed')
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

import camsight
from camsight.config.base import StrictModel
from camsight.errors import ModelError
from camsight.search.embeddings import (
    FILE_PATTERN,
    MANIFEST,
    NAME_PATTERN,
    ModelManifest,
    default_models_dir,
    parse_json,
    read_json,
    read_manifest,
    validation_problems,
)

__all__ = [
    "REGISTRY_ENV",
    "ModelStatus",
    "PullResult",
    "Registry",
    "RegistryEntry",
    "RemoteFile",
    "default_models_dir",
    "load_registry",
    "model_status",
    "pull",
    "verify_folder",
]

REGISTRY_ENV = "CAMSIGHT_MODEL_REGISTRY"
CHUNK = 1 << 20
USER_AGENT = f"camsight/{camsight.__version__} (model download)"

#: ``progress(file_name, new_bytes)`` is called as bytes arrive.
Progress = Callable[[str, int], None]


class KnownCopy(StrictModel):
    """Another byte-exact file accepted for a model file (a re-export of the same weights)."""

    size: Annotated[int, Field(gt=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    #: Where that copy comes from, and why it is trusted.
    origin: str


class RemoteFile(StrictModel):
    """One file of a model folder: where to get it and what it must hash to."""

    name: Annotated[str, Field(pattern=FILE_PATTERN)]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    size: Annotated[int, Field(gt=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    #: Copies installed with ``--from FOLDER`` may also be one of these (never a download).
    known_copies: list[KnownCopy] = Field(default_factory=list)

    def accepts(self, size: int, sha256: str | None = None) -> bool:
        """Whether a file of ``size`` bytes (and ``sha256``, when given) is this file or a known copy."""
        pins = [(self.size, self.sha256), *((c.size, c.sha256) for c in self.known_copies)]
        return any(size == s and (sha256 is None or sha256 == h) for s, h in pins)

    @field_validator("name")
    @classmethod
    def _not_manifest(cls, value: str) -> str:
        if value == MANIFEST:
            raise ValueError(f"{MANIFEST} is written from the entry's manifest, not downloaded")
        return value


class RegistryEntry(StrictModel):
    """A downloadable model: its files and, for a vision-language model, the manifest that describes them.

    ``kind`` is ``embedding`` (a folder :func:`camsight.search.embeddings.load_encoder`
    reads through its manifest), ``detector`` (weights a detector backend finds
    by file name in ``<models dir>/<name>/``), ``attributes`` (the same, for the
    person attributes model read while indexing) or ``reid`` (the same, for the person
    re-identification model).
    """

    #: The registry key (filled in from it; a folder name).
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    kind: Literal["embedding", "detector", "attributes", "reid"] = "embedding"
    description: str = ""
    license: str | None = None
    homepage: str | None = None
    #: Where the pinned checksums were taken from.
    notes: str | None = None
    files: Annotated[list[RemoteFile], Field(min_length=1)]
    manifest: ModelManifest | None = None

    @model_validator(mode="after")
    def _files_cover_manifest(self) -> RegistryEntry:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("files: a file name is listed twice")
        if self.kind in ("detector", "attributes", "reid"):
            if self.manifest is not None:
                raise ValueError(f"manifest: a {self.kind} model has no manifest")
            return self
        if self.manifest is None:
            raise ValueError("manifest: a vision-language model needs one")
        missing = [n for n in self.manifest.files() if n not in names]
        if missing:
            raise ValueError(f"manifest names {', '.join(missing)}, which files does not list")
        return self

    @property
    def size(self) -> int:
        """Total download size in bytes."""
        return sum(f.size for f in self.files)


class Registry(StrictModel):
    """All known models, by name; ``origin`` says which file they came from."""

    schema_: Annotated[Literal[1], Field(alias="schema")] = 1
    models: dict[Annotated[str, Field(pattern=NAME_PATTERN)], RegistryEntry]
    origin: str = "built-in"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _name_entries(cls, data: Any) -> Any:
        models = data.get("models") if isinstance(data, dict) else None
        if isinstance(models, dict):
            named = {k: {"name": k, **v} if isinstance(v, dict) else v for k, v in models.items()}
            data = {**data, "models": named}
        return data

    @model_validator(mode="after")
    def _names_match(self) -> Registry:
        for key, entry in self.models.items():
            if entry.name != key:
                raise ValueError(f"models.{key}: name is {entry.name!r}, not {key!r}")
            if entry.manifest is not None and entry.manifest.name != key:
                raise ValueError(f"models.{key}: manifest.name is {entry.manifest.name!r}, not {key!r}")
        return self

    def get(self, name: str) -> RegistryEntry:
        """The entry for ``name``; an unknown name raises :class:`ModelError` listing the known ones."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ModelError(f"unknown model {name!r}; known models ({self.origin}): {known}") from None


def parse_registry(data: Any, origin: str) -> Registry:
    """Validate registry data; errors name ``origin`` and each bad key."""
    if not isinstance(data, dict):
        raise ModelError(f"{origin}: a model registry must be a JSON object")
    try:
        return Registry.model_validate({**data, "origin": origin})
    except ValidationError as exc:
        raise ModelError(f"{origin}: {validation_problems(exc, limit=5)}") from None


def load_registry(path: Path | None = None) -> Registry:
    """``path``, else the file named by ``CAMSIGHT_MODEL_REGISTRY``, else the built-in registry.

    >>> sorted(load_registry().models)     # doctest: +SKIP
    ['clip-vit-b32']
    """
    if path is None and os.environ.get(REGISTRY_ENV):
        path = Path(os.environ[REGISTRY_ENV]).expanduser()
    if path is None:
        origin = "built-in registry"
        try:
            text = resources.files("camsight.search").joinpath("models.json").read_text(encoding="utf-8")
        except (OSError, ModuleNotFoundError) as exc:
            raise ModelError(f"the built-in model registry is missing from this install ({exc})") from None
        return parse_registry(parse_json(text, origin), origin)
    data = read_json(
        Path(path),
        missing=f"{path}: model registry not found (named by {REGISTRY_ENV})",
        what="the model registry",
    )
    return parse_registry(data, str(path))


# --------------------------------------------------------------------------- installed models


@dataclass(frozen=True)
class ModelStatus:
    """What is on disk for one model: ``installed``, ``missing`` or ``damaged`` (+ why)."""

    name: str
    folder: Path
    state: Literal["installed", "missing", "damaged"]
    detail: str = ""


def model_status(name: str, directory: Path, entry: RegistryEntry | None = None) -> ModelStatus:
    """Cheap check (no hashing): the folder, its manifest and, with ``entry``, the file sizes.

    >>> model_status("clip-vit-b32", Path("/nowhere")).state
    'missing'
    """
    folder = directory / name
    if not folder.is_dir():
        return ModelStatus(name, folder, "missing")
    if entry is None or entry.kind == "embedding":
        try:
            manifest = read_manifest(folder)
        except ModelError as exc:
            return ModelStatus(name, folder, "damaged", str(exc))
        for file_name in manifest.files():
            if not (folder / file_name).is_file():
                return ModelStatus(name, folder, "damaged", f"{file_name} is missing")
    if entry is not None:
        for remote in entry.files:
            path = folder / remote.name
            if not path.is_file():
                return ModelStatus(name, folder, "damaged", f"{remote.name} is missing")
            if not remote.accepts(path.stat().st_size):
                return ModelStatus(name, folder, "damaged", f"{remote.name} has the wrong size")
    return ModelStatus(name, folder, "installed")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_folder(entry: RegistryEntry, folder: Path) -> list[str]:
    """Every way ``folder`` differs from ``entry`` (empty when it matches byte for byte)."""
    problems = []
    if entry.manifest is not None and not (folder / MANIFEST).is_file():
        problems.append(f"{MANIFEST} is missing")
    for remote in entry.files:
        path = folder / remote.name
        if not path.is_file():
            problems.append(f"{remote.name} is missing")
        elif not remote.accepts(path.stat().st_size):
            problems.append(f"{remote.name} has {path.stat().st_size} bytes, expected {remote.size}")
        elif not remote.accepts(path.stat().st_size, sha256_of(path)):
            problems.append(f"{remote.name} does not match its sha256")
    return problems


# --------------------------------------------------------------------------- downloading


@dataclass(frozen=True)
class PullResult:
    """Where the model now is and what :func:`pull` did: ``installed``, ``replaced`` or ``present``."""

    folder: Path
    status: Literal["installed", "replaced", "present"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(directory: Path, name: str) -> None:
    """Folders left by a pull that was killed (its process is gone).

    A ``.old-`` folder is the previous install, moved aside just before the
    new one was renamed in; if the kill came between the two renames it is
    put back, else it is removed.
    """
    for prefix in (f".{name}.partial-", f".{name}.old-"):
        for path in directory.glob(prefix + "*"):
            pid = path.name[len(prefix) :].split("-", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
            if prefix.endswith(".old-") and not (directory / name).exists():
                with contextlib.suppress(OSError):  # if even that fails, leave it for the user
                    os.replace(path, directory / name)
                continue
            shutil.rmtree(path, ignore_errors=True)


def _copy(model: str, remote: RemoteFile, source: Path, dest: Path, progress: Progress) -> None:
    """Install ``source`` (a local copy, e.g. from a shared folder) as ``remote`` if its bytes are pinned."""
    what = f"{model}/{remote.name}"
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise ModelError(f"cannot read {source} for {what} ({exc.strerror or exc})") from None
    if not remote.accepts(size):
        raise ModelError(f"{source} has {size} bytes, not a pinned copy of {what}; nothing was kept")
    digest = hashlib.sha256()
    try:
        with source.open("rb") as inp, dest.open("wb") as out:
            while block := inp.read(CHUNK):
                digest.update(block)
                out.write(block)
                progress(remote.name, len(block))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise ModelError(f"cannot copy {source} for {what} ({exc.strerror or exc})") from None
    if not remote.accepts(size, digest.hexdigest()):
        raise ModelError(
            f"checksum mismatch for {what}: {source} has sha256 {digest.hexdigest()}, which the registry "
            f"does not pin; nothing was kept"
        )


def _fetch(model: str, remote: RemoteFile, dest: Path, progress: Progress, timeout: float) -> None:
    what = f"{model}/{remote.name}"
    request = urllib.request.Request(remote.url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) != remote.size:
                raise ModelError(
                    f"{what}: the server offers {int(length)} bytes but the registry pins {remote.size} "
                    f"({remote.url}); nothing was kept"
                )
            while block := response.read(CHUNK):
                received += len(block)
                if received > remote.size:
                    raise ModelError(
                        f"{what}: the server sent more than the pinned {remote.size} bytes "
                        f"({remote.url}); nothing was kept"
                    )
                digest.update(block)
                out.write(block)
                progress(remote.name, len(block))
            out.flush()
            os.fsync(out.fileno())
    except ModelError:
        raise
    except urllib.error.HTTPError as exc:
        raise ModelError(
            f"download of {what} failed: HTTP {exc.code} {exc.reason} from {remote.url}; nothing was kept"
        ) from None
    except urllib.error.URLError as exc:
        host = urllib.parse.urlsplit(remote.url).netloc
        raise ModelError(f"download of {what} failed: cannot reach {host} ({exc.reason})") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ModelError(
            f"download of {what} broke off after {received} of {remote.size} bytes "
            f"({type(exc).__name__}: {exc}); nothing was kept, run the command again"
        ) from None
    if received != remote.size:
        raise ModelError(
            f"download of {what} broke off after {received} of {remote.size} bytes "
            f"(the server closed the connection); nothing was kept, run the command again"
        )
    actual = digest.hexdigest()
    if actual != remote.sha256:
        raise ModelError(
            f"checksum mismatch for {what}: expected sha256 {remote.sha256}, got {actual} "
            f"(from {remote.url}); the download was discarded"
        )


def _local_copy(source: Path, file_name: str) -> Path:
    """``source/file_name``, or the same name one folder down (``../shared/models/openvino/``)."""
    direct = source / file_name
    if direct.is_file():
        return direct
    nested = sorted(p for p in source.glob(f"*/{file_name}") if p.is_file())
    return nested[0] if nested else direct


def pull(
    entry: RegistryEntry,
    directory: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    timeout: float = 60.0,
    source: Path | None = None,
) -> PullResult:
    """Download ``entry`` into ``directory/<name>``, verified and all-or-nothing.

    With ``source``, the files are copied from that local folder instead (a
    site mirror, or ``../shared/models`` at set-up) and must still match a
    pinned checksum; nothing is downloaded.

    Files go to a hidden staging folder in ``directory``; each must have the
    pinned size and sha256. Only a complete, verified folder is renamed into
    place (replacing an old one with ``force``). Any failure removes the
    staging folder and raises :class:`ModelError`; an existing model is left
    as it was. A model already present and intact is not downloaded again.

    >>> pull(load_registry().get("clip-vit-b32"), Path("models"))    # doctest: +SKIP
    PullResult(folder=PosixPath('models/clip-vit-b32'), status='installed')
    """
    report = progress or (lambda _name, _n: None)
    name = entry.name
    target = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the models folder {directory} ({exc.strerror or exc})") from None
    _remove_stale(directory, name)
    if target.exists() and not force:
        problems = verify_folder(entry, target)
        if not problems:
            return PullResult(target, "present")
        raise ModelError(
            f"{target} exists but differs from the registry ({problems[0]}): "
            f"run: camsight models pull {name} --force"
        )
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=directory))
    except OSError as exc:
        raise ModelError(f"cannot write to the models folder {directory} ({exc.strerror or exc})") from None
    try:
        for remote in entry.files:
            try:
                if source is not None:
                    _copy(name, remote, _local_copy(source, remote.name), staging / remote.name, report)
                else:
                    _fetch(name, remote, staging / remote.name, report, timeout)
            except ModelError as exc:
                if target.exists():
                    raise ModelError(f"{exc}; the installed copy in {target} is unchanged") from None
                raise
        if entry.manifest is not None:
            manifest = entry.manifest.model_dump(mode="json", exclude_defaults=False)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            old = directory / f".{name}.old-{os.getpid()}"
            os.replace(target, old)
            try:
                os.replace(staging, target)
            except OSError:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
            status: Literal["installed", "replaced"] = "replaced"
        else:
            os.replace(staging, target)
            status = "installed"
    except OSError as exc:
        raise ModelError(f"cannot write {name} into {directory} ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    return PullResult(target, status)
