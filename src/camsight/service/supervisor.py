"""``camsight run``: one process per camera, restarted when it dies; alerts and retention beside them.

A camera's worker is a separate process so that a stalled stream, a decoder
crash or a runaway model in one camera never touches the others. The
supervisor watches them: a worker that exits is started again with
exponential backoff, and its camera's health says why.

:meth:`Supervisor.apply` takes a new config while it runs (the web app's
camera edits): workers of new cameras start, those of removed or disabled
cameras stop, and those whose camera block changed (or every one, when
settings shared by all cameras changed) are stopped and started again with
the new block.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from camsight.config import Config, validate_config
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import CameraStatusRow, utcnow

log = logging.getLogger(__name__)

#: Seconds a worker is given to stop cleanly before it is killed.
STOP_SECONDS = 10.0
RESTART_INITIAL = 1.0
RESTART_MAX = 60.0
#: Seconds between retention passes.
RETENTION_SECONDS = 60.0
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


def worker_main(config_data: dict[str, Any], camera: str, data_dir: str, stop: Any, log_level: int) -> None:
    """Entry point of a camera's process."""
    from camsight.cli.output import setup_logging
    from camsight.pipeline.live import CameraWorker

    setup_logging(log_level <= logging.DEBUG)
    # The parent handles Ctrl-C and tells workers to stop through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = validate_config(config_data, "config")
    local = threading.Event()

    def relay() -> None:
        stop.wait()
        local.set()

    threading.Thread(target=relay, daemon=True).start()
    CameraWorker(config, camera, Path(data_dir)).run(local)


@dataclass
class _Worker:
    camera: str
    #: This worker's own stop signal (a multiprocessing Event), so one camera can stop alone.
    stop: Any
    process: BaseProcess | None = None
    failures: int = 0
    next_start: float = 0.0
    started: float = field(default=0.0)
    #: When the worker was asked to stop (monotonic), for a restart or removal; None otherwise.
    stop_asked: float | None = None


class Supervisor:
    """Starts a worker per enabled camera with a URL, keeps them running, and stops them all.

    ``cameras`` limits which of the config's cameras run (``camsight run --only``);
    the config's other cameras stay off after :meth:`apply` too, while cameras
    added later run.
    """

    def __init__(self, config: Config, store: Store, *, cameras: list[str] | None = None) -> None:
        self.config = config
        self.store = store
        names = [n for n, c in config.cameras.items() if c.url and c.enabled]
        self.cameras = [n for n in names if cameras is None or n in cameras]
        #: Cameras of the first config left out by ``cameras`` (enabled or not, with a url or not).
        self._excluded = frozenset(n for n in config.cameras if cameras is not None and n not in cameras)
        self._ctx = mp.get_context("spawn")
        # The run loop and apply() (called from API threads) share the workers: one lock for both.
        self._lock = threading.RLock()
        self._workers = {name: self._new_worker(name) for name in self.cameras}
        #: Workers being stopped for good (camera removed or disabled), until their process has exited.
        self._retiring: list[_Worker] = []
        self._threads: list[threading.Thread] = []
        self._retention_started = False
        self._closed = False

    def _new_worker(self, camera: str) -> _Worker:
        return _Worker(camera, self._ctx.Event())

    def run(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        """Supervise until ``stop`` is set; then stop every worker (killing stragglers)."""
        self._start_side_jobs(stop)
        try:
            while not stop.is_set():
                now = time.monotonic()
                with self._lock:
                    for w in list(self._workers.values()):
                        self._check(w, now)
                    self._reap(now)
                    self._maybe_start_retention(stop)
                stop.wait(poll_s)
        finally:
            self.shutdown()

    def apply(self, config: Config) -> dict[str, list[str]]:
        """Run ``config`` from now on: start, stop and restart workers to match it (thread-safe).

        Returns the cameras ``started``, ``stopped`` and ``restarted``. Workers
        are started by the run loop (within a poll, ~0.5 s); a restarted one
        starts once its old process has exited, so two processes never run
        the same camera. Retention limits are read again on its next pass; the
        alert delivery thread keeps the ``alerts`` section it started with
        (changing that needs a restart of ``camsight run``).
        """
        with self._lock:
            old = self.config
            wanted = [n for n, c in config.cameras.items() if c.url and c.enabled and n not in self._excluded]
            shared_changed = _shared(old) != _shared(config)
            started: list[str] = []
            stopped: list[str] = []
            restarted: list[str] = []
            now = time.monotonic()
            for name in list(self._workers):
                if name not in wanted:
                    w = self._workers.pop(name)
                    self._ask_stop(w, now)
                    self._retiring.append(w)
                    stopped.append(name)
            for name in wanted:
                w = self._workers.get(name)
                if w is None:
                    self._workers[name] = self._new_worker(name)
                    started.append(name)
                elif shared_changed or old.cameras.get(name) != config.cameras.get(name):
                    w.failures, w.next_start = 0, 0.0
                    if w.process is not None:
                        self._ask_stop(w, now)
                    restarted.append(name)
            self.config = config
            self.cameras = wanted
        if started or stopped or restarted:
            log.info(
                "config applied",
                extra={"started": started, "stopped": stopped, "restarted": restarted},
            )
        return {"started": started, "stopped": stopped, "restarted": restarted}

    def _ask_stop(self, w: _Worker, now: float) -> None:
        if w.stop_asked is None:
            w.stop.set()
            w.stop_asked = now

    def _check(self, w: _Worker, now: float) -> None:
        p = w.process
        if p is not None and p.is_alive():
            if w.stop_asked is not None:
                if now - w.stop_asked > STOP_SECONDS:
                    log.warning("killing worker that did not stop", extra={"camera": w.camera})
                    p.kill()
            elif now - w.started > 60.0:
                w.failures = 0  # it has been running fine for a while
            return
        if p is not None:
            p.join(0)
            w.process = None
            if w.stop_asked is not None:
                # Stopped on purpose (a changed config): start again at once, with a fresh signal.
                w.stop_asked = None
                w.stop = self._ctx.Event()
                w.next_start = now
            else:
                code = p.exitcode
                w.failures += 1
                delay = min(RESTART_MAX, RESTART_INITIAL * 2 ** (w.failures - 1))
                w.next_start = now + delay
                message = f"camera worker exited (code {code}); restarting in {delay:.0f}s"
                log.warning("worker exited", extra={"camera": w.camera, "code": code})
                self._status(w.camera, "error", message)
        elif w.stop_asked is not None:
            # Asked to restart before it ever started: nothing to wait for.
            w.stop_asked = None
            w.stop = self._ctx.Event()
        if now >= w.next_start and not self._closed and not self._retiring_alive(w.camera):
            self._spawn(w, now)

    def _retiring_alive(self, camera: str) -> bool:
        return any(
            r.camera == camera and r.process is not None and r.process.is_alive() for r in self._retiring
        )

    def _reap(self, now: float) -> None:
        """Forget retired workers whose process has exited; kill those that ignore the stop signal."""
        keep = []
        for w in self._retiring:
            p = w.process
            if p is None or not p.is_alive():
                if p is not None:
                    p.join(0)
                continue
            if w.stop_asked is not None and now - w.stop_asked > STOP_SECONDS:
                log.warning("killing worker that did not stop", extra={"camera": w.camera})
                p.kill()
            keep.append(w)
        self._retiring = keep

    def _spawn(self, w: _Worker, now: float) -> None:
        data = self.config.model_dump(mode="json", by_alias=True)
        level = logging.getLogger("camsight").getEffectiveLevel()
        p = self._ctx.Process(
            target=worker_main,
            args=(data, w.camera, str(self.store.root), w.stop, level),
            name=f"camsight-{w.camera}",
            daemon=True,
        )
        p.start()
        w.process, w.started = p, now

    def _start_side_jobs(self, stop: threading.Event) -> None:
        if self.config.alerts.sink_names():
            from camsight.alerts.dispatcher import Dispatcher

            dispatcher = Dispatcher(self.store, self.config.alerts)
            t = threading.Thread(target=dispatcher.run, args=(stop,), name="alerts", daemon=True)
            t.start()
            self._threads.append(t)

    def _maybe_start_retention(self, stop: threading.Event) -> None:
        # Started once some camera records: at the start, or when a recording camera is added.
        if self._retention_started or not any(
            self.config.cameras[c].record.mode != "off" for c in self.cameras if c in self.config.cameras
        ):
            return
        self._retention_started = True
        t = threading.Thread(target=self._retention_loop, args=(stop,), name="retention", daemon=True)
        t.start()
        self._threads.append(t)

    def _retention_loop(self, stop: threading.Event) -> None:
        from camsight.media.retention import enforce_retention

        while not stop.is_set():
            with self._lock:  # the config may change between passes (apply)
                config = self.config
                cams = {n: config.cameras[n].record for n in self.cameras if n in config.cameras}
            root = Path(config.storage.recordings or (self.store.root / "recordings"))
            try:
                report = enforce_retention(self.store, root, cams, config.storage.min_free_gb)
                for warning in getattr(report, "warnings", []) or []:
                    log.warning("retention", extra={"detail": warning})
            except Exception:  # retention must never take the service down
                log.exception("retention pass failed")
            stop.wait(RETENTION_SECONDS)

    def shutdown(self) -> None:
        """Ask every worker to stop, wait, then kill what is left."""
        with self._lock:
            self._closed = True
            workers = [*self._workers.values(), *self._retiring]
            for w in workers:
                w.stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        for w in workers:
            if w.process is not None:
                w.process.join(max(0.1, deadline - time.monotonic()))
        for w in workers:
            p = w.process
            if p is not None and p.is_alive():
                log.warning("killing worker that did not stop", extra={"camera": w.camera})
                p.kill()
                p.join(2.0)
        for t in self._threads:
            t.join(5.0)

    def pids(self) -> dict[str, int | None]:
        """Each running camera's worker process id (for tests and diagnostics)."""
        with self._lock:
            return {
                n: (w.process.pid if w.process is not None and w.process.is_alive() else None)
                for n, w in self._workers.items()
            }

    def _status(self, camera: str, state: str, error: str | None) -> None:
        try:
            with self.store.session() as session:
                cam = repo.get_or_create_camera(session, camera, kind="live")
                row = session.get(CameraStatusRow, cam.id)
                if row is None:
                    session.add(
                        CameraStatusRow(camera_id=cam.id, state=state, error=error, updated_at=utcnow())
                    )
                else:
                    row.state, row.error, row.updated_at = state, error, utcnow()
        except Exception:  # status is best effort
            log.warning("cannot write camera status", extra={"camera": camera}, exc_info=True)


def _shared(config: Config) -> str:
    """Everything of ``config`` that every camera's worker uses (all but the camera blocks)."""
    return config.model_dump_json(exclude={"cameras"})


def camera_status(store: Store) -> list[tuple[str, CameraStatusRow | None]]:
    """Every camera with its latest health (None for cameras never run live)."""
    from sqlalchemy import select

    from camsight.store.models import Camera

    with store.session() as session:
        rows = session.execute(
            select(Camera.name, CameraStatusRow).outerjoin(
                CameraStatusRow, CameraStatusRow.camera_id == Camera.id
            )
        ).all()
        return [(name, row) for name, row in rows]
