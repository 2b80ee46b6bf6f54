"""``camsight run``: one process per camera, restarted when it dies; alerts and retention beside them.

A camera's worker is a separate process so that a stalled stream, a decoder
crash or a runaway model in one camera never touches the others. The
supervisor watches them: a worker that exits is started again with
exponential backoff, and its camera's health says why.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
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
    process: BaseProcess | None = None
    failures: int = 0
    next_start: float = 0.0
    started: float = field(default=0.0)


class Supervisor:
    """Starts a worker per enabled camera with a URL, keeps them running, and stops them all."""

    def __init__(self, config: Config, store: Store, *, cameras: list[str] | None = None) -> None:
        self.config = config
        self.store = store
        names = [n for n, c in config.cameras.items() if c.url and c.enabled]
        self.cameras = [n for n in names if cameras is None or n in cameras]
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._workers = {name: _Worker(name) for name in self.cameras}
        self._threads: list[threading.Thread] = []

    def run(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        """Supervise until ``stop`` is set; then stop every worker (killing stragglers)."""
        self._start_side_jobs(stop)
        try:
            while not stop.is_set():
                now = time.monotonic()
                for w in self._workers.values():
                    self._check(w, now)
                stop.wait(poll_s)
        finally:
            self.shutdown()

    def _check(self, w: _Worker, now: float) -> None:
        p = w.process
        if p is not None and p.is_alive():
            if now - w.started > 60.0:
                w.failures = 0  # it has been running fine for a while
            return
        if p is not None:
            code = p.exitcode
            w.process = None
            w.failures += 1
            delay = min(RESTART_MAX, RESTART_INITIAL * 2 ** (w.failures - 1))
            w.next_start = now + delay
            message = f"camera worker exited (code {code}); restarting in {delay:.0f}s"
            log.warning("worker exited", extra={"camera": w.camera, "code": code})
            self._status(w.camera, "error", message)
        if now >= w.next_start:
            self._spawn(w, now)

    def _spawn(self, w: _Worker, now: float) -> None:
        data = self.config.model_dump(mode="json", by_alias=True)
        level = logging.getLogger("camsight").getEffectiveLevel()
        p = self._ctx.Process(
            target=worker_main,
            args=(data, w.camera, str(self.store.root), self._stop, level),
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
        if any(self.config.cameras[c].record.mode != "off" for c in self.cameras):
            t = threading.Thread(target=self._retention_loop, args=(stop,), name="retention", daemon=True)
            t.start()
            self._threads.append(t)

    def _retention_loop(self, stop: threading.Event) -> None:
        from camsight.media.retention import enforce_retention

        root = Path(self.config.storage.recordings or (self.store.root / "recordings"))
        cams = {n: self.config.cameras[n].record for n in self.cameras}
        while not stop.is_set():
            try:
                report = enforce_retention(self.store, root, cams, self.config.storage.min_free_gb)
                for warning in getattr(report, "warnings", []) or []:
                    log.warning("retention", extra={"detail": warning})
            except Exception:  # retention must never take the service down
                log.exception("retention pass failed")
            stop.wait(RETENTION_SECONDS)

    def shutdown(self) -> None:
        """Ask every worker to stop, wait, then kill what is left."""
        self._stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        for w in self._workers.values():
            if w.process is not None:
                w.process.join(max(0.1, deadline - time.monotonic()))
        for w in self._workers.values():
            p = w.process
            if p is not None and p.is_alive():
                log.warning("killing worker that did not stop", extra={"camera": w.camera})
                p.kill()
                p.join(2.0)
        for t in self._threads:
            t.join(5.0)

    def pids(self) -> dict[str, int | None]:
        """Each camera's worker process id (for tests and diagnostics)."""
        return {n: (w.process.pid if w.process is not None else None) for n, w in self._workers.items()}

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
