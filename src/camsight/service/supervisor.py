"""``camsight run``: one process per camera, restarted when it dies; alerts and retention beside them.

A camera's worker is a separate process so that a stalled stream, a decoder
crash or a runaway model in one camera never touches the others. The
supervisor watches them: a worker that exits is started again with
exponential backoff, and its camera's health says why: a worker that cannot
run (a missing model, a detector error, a bad setting, any exception) sends
its one-line reason and traceback up a pipe before it exits; the supervisor
keeps the reason in the camera's health (``failed``, "...; restarting in 8s")
and logs the traceback once, not on every restart for the same reason.

:meth:`Supervisor.apply` takes a new config while it runs (the web app's
camera edits): workers of new cameras start, those of removed or disabled
cameras stop, and those whose camera block changed (or every one, when
settings shared by all cameras changed) are stopped and started again with
the new block.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from camsight.config import Config, validate_config
from camsight.errors import failure_reason
from camsight.paths import recordings_dir
from camsight.pipeline.live_view import LiveChannel
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import CameraStatusRow, utcnow
from camsight.timeutil import backoff

log = logging.getLogger(__name__)

#: Seconds a worker is given to stop cleanly before it is killed.
STOP_SECONDS = 10.0
RESTART_INITIAL = 1.0
RESTART_MAX = 60.0
#: Cameras behind one switch that fail together restart spread over this share of the delay.
RESTART_JITTER = 0.2
#: Seconds between retention passes.
RETENTION_SECONDS = 60.0


#: State of a camera whose worker failed and waits to be started again.
FAILED = "failed"
#: Characters of a worker's traceback sent to the supervisor, at most.
MAX_TRACEBACK = 20_000


def worker_main(
    config_data: dict[str, Any],
    camera: str,
    data_dir: str,
    stop: Any,
    log_level: int,
    report: Any = None,
    live: LiveChannel | None = None,
) -> None:
    """Entry point of a camera's process: run the camera until ``stop`` is set.

    ``live`` is where the camera's live-view pictures go (the web app's MJPEG stream).

    When it cannot (any exception), the one-line reason goes to the camera's
    health and, with the traceback, to ``report`` (the sending end of a pipe
    to the supervisor, which logs the traceback once however often the worker
    is restarted for the same reason); then the process exits with code 1.
    Without ``report`` the traceback is logged here.
    """
    from camsight.logs import setup_logging

    setup_logging(log_level <= logging.DEBUG)
    # The parent handles Ctrl-C and tells workers to stop through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config: Config | None = None
    local = threading.Event()

    parent = os.getppid()

    def relay() -> None:
        # Short waits, ended before the process exits: a process that dies inside ``stop.wait()``
        # leaves a sleeper count behind, and the supervisor's ``stop.set()`` would wait for it forever.
        while not local.is_set():
            # A supervisor killed outright (kill -9) cannot say stop: its workers stop when it is gone,
            # rather than record on for a node every other node already shows as down.
            if stop.wait(0.25) or os.getppid() != parent:
                local.set()

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    try:
        from camsight.pipeline.live import CameraWorker

        config = validate_config(config_data, "config")
        CameraWorker(config, camera, Path(data_dir), live=live).run(local)
    except Exception as exc:
        secrets = _camera_secrets(config, camera)
        reason = _scrub(failure_reason(exc), secrets)
        # The end of a traceback says the most; a bounded message never fills the pipe.
        trace = _scrub(traceback.format_exc(), secrets)[-MAX_TRACEBACK:]
        if not _send(report, (reason, trace)):
            # No supervisor to tell: the health and the log get it from here.
            _record_failure(Path(data_dir), camera, reason, config)
            log.error("camera worker failed", extra={"camera": camera, "reason": reason, "traceback": trace})
        sys.exit(1)
    finally:
        local.set()
        relaying.join(2.0)
        if report is not None:
            report.close()


def _send(report: Any, message: tuple[str, str]) -> bool:
    """Hand ``message`` to the supervisor; False when there is no pipe or it is gone."""
    if report is None:
        return False
    try:
        report.send(message)
        return True
    except (OSError, ValueError):
        return False


def _camera_secrets(config: Config | None, camera: str) -> list[str]:
    """Passwords of the camera's URLs, which an exception's text may carry (never shown or logged)."""
    from camsight.urls import url_secrets

    cam = config.camera(camera) if config is not None else None
    if cam is None:
        return []
    found = [s for url in (cam.url, cam.detect_url) if url for s in url_secrets(url)]
    found += [p for p in (cam.password, os.environ.get(cam.password_env or "") or None) if p]
    return sorted(set(found), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _record_failure(data_dir: Path, camera: str, reason: str, config: Config | None = None) -> None:
    """Write ``failed`` and the reason into the camera's health, if the store can be opened at all."""
    from camsight.store.db import open_store, url_for

    try:
        store = open_store(data_dir, url=url_for(config.store if config else None))
    except Exception:  # the supervisor writes it too, from what the pipe says
        return
    try:
        write_status(store, camera, FAILED, reason)
    finally:
        store.close()


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
    #: The receiving end of the running process's pipe: why it failed, when it did.
    report: Any = None
    #: What the running process sent up its pipe: (reason, traceback).
    reported: tuple[str, str] | None = None
    #: The reason of the last failure whose traceback was logged (a repeat logs one short line).
    logged_reason: str | None = None
    #: The running process's live-view pictures; a new one per process, so each has one writer.
    live: LiveChannel | None = None


class Supervisor:
    """Starts a worker per enabled camera with a URL, keeps them running, and stops them all.

    ``cameras`` limits which of the config's cameras run (``camsight run --only``);
    the config's other cameras stay off after :meth:`apply` too, while cameras
    added later run. ``node`` (``camsight run --node``) runs only the cameras whose
    ``node:`` names it; without it, only cameras with no ``node:`` run.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        cameras: list[str] | None = None,
        node: str | None = None,
        restart_initial: float = RESTART_INITIAL,
        restart_max: float = RESTART_MAX,
    ) -> None:
        self.config = config
        self.store = store
        #: Seconds before the first restart of a failed worker, doubling up to ``restart_max``.
        self.restart_initial = restart_initial
        self.restart_max = restart_max
        self.node = node
        names = [n for n, c in config.cameras.items() if c.url and c.enabled and config.node_of(n) == node]
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
        #: Where the API listens (host, port): the default base of the links in alerts (set before run()).
        self.api_address: tuple[str, int] | None = None

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
            wanted = [
                n
                for n, c in config.cameras.items()
                if c.url and c.enabled and n not in self._excluded and config.node_of(n) == self.node
            ]
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
            # A failing worker writes its reason, then exits: read it now, so the send never waits.
            self._read_report(w)
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
                self._failed(w, p.exitcode, now)
                # A process that died while waiting on its stop signal (killed, crashed) leaves the
                # signal unusable: setting it would wait for that waiter forever.
                w.stop = self._ctx.Event()
            self._close_report(w)
        elif w.stop_asked is not None:
            # Asked to restart before it ever started: nothing to wait for.
            w.stop_asked = None
            w.stop = self._ctx.Event()
        if now >= w.next_start and not self._closed and not self._retiring_alive(w.camera):
            self._spawn(w, now)

    def _failed(self, w: _Worker, code: int | None, now: float) -> None:
        """A worker exited on its own: say why in its health, log it, and schedule the restart."""
        reason, trace = self._report(w)
        if reason is None:
            # Nothing came up the pipe: the process died outside Python (a crash, a kill, out of memory).
            reason = _exit_reason(code)
        w.failures += 1
        delay = backoff(w.failures - 1, self.restart_initial, self.restart_max, jitter=RESTART_JITTER)
        w.next_start = now + delay
        extra = {"camera": w.camera, "code": code, "restart_in": round(delay, 1)}
        if reason != w.logged_reason:
            w.logged_reason = reason
            if trace:
                extra["traceback"] = trace
            log.error("camera worker failed: %s", reason, extra=extra)
        else:
            # The same failure again: the traceback is in the log already; backing off is no news.
            log.info("camera worker failed again", extra={**extra, "failures": w.failures})
        wait = f"{delay:.0f}s" if delay >= 1 else f"{delay:.1f}s"
        self._status(w.camera, FAILED, f"{reason}; restarting in {wait}")

    @staticmethod
    def _read_report(w: _Worker) -> None:
        """Keep what the worker sent up its pipe, if anything (never waits)."""
        try:
            if w.report is not None and w.report.poll(0):
                reason, trace = w.report.recv()
                w.reported = (str(reason), str(trace))
        except (EOFError, OSError, ValueError, TypeError):
            pass

    def _report(self, w: _Worker) -> tuple[str | None, str | None]:
        """What the exited worker sent up its pipe: (reason, traceback), or Nones."""
        self._read_report(w)
        reported, w.reported = w.reported, None
        return reported if reported is not None else (None, None)

    @staticmethod
    def _close_report(w: _Worker) -> None:
        if w.report is not None:
            w.report.close()
            w.report = None
        w.reported = None

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
                self._close_report(w)
                continue
            if w.stop_asked is not None and now - w.stop_asked > STOP_SECONDS:
                log.warning("killing worker that did not stop", extra={"camera": w.camera})
                p.kill()
            keep.append(w)
        self._retiring = keep

    def _spawn(self, w: _Worker, now: float) -> None:
        data = self.config.model_dump(mode="json", by_alias=True)
        level = logging.getLogger("camsight").getEffectiveLevel()
        self._close_report(w)
        receive, send = self._ctx.Pipe(duplex=False)
        live = LiveChannel(self._ctx)
        p = self._ctx.Process(
            target=worker_main,
            args=(data, w.camera, str(self.store.root), w.stop, level, send, live),
            name=f"camsight-{w.camera}",
            daemon=True,
        )
        try:
            p.start()
        finally:
            send.close()  # the child has its own copy; ours would keep the pipe open forever
        w.process, w.started, w.report, w.live = p, now, receive, live

    def _start_side_jobs(self, stop: threading.Event) -> None:
        if self.config.alerts.sink_names():
            from camsight.alerts.dispatcher import Dispatcher
            from camsight.alerts.links import EventLinks

            host, port = self.api_address or (None, None)
            links = EventLinks.from_config(self.config, self.store.root, host=host, port=port)
            dispatcher = Dispatcher(self.store, self.config.alerts, cameras=self.config.cameras, links=links)
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
            root = recordings_dir(self.store.root, config.storage.recordings)
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
                if w.process is not None and w.process.is_alive():  # see _check: never a dead waiter's
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
        for w in workers:
            self._close_report(w)
        for t in self._threads:
            t.join(5.0)

    def live_channel(self, camera: str) -> LiveChannel | None:
        """Where the running worker of ``camera`` publishes live pictures; None when it has no process.

        Read without the lock (one dict look-up and attribute reads are atomic): a live
        viewer polls this often and must not wait while :meth:`apply` restarts workers.
        """
        w = self._workers.get(camera)
        if w is None or w.process is None or w.stop_asked is not None:
            return None
        return w.live

    def pids(self) -> dict[str, int | None]:
        """Each running camera's worker process id (for tests and diagnostics)."""
        with self._lock:
            return {
                n: (w.process.pid if w.process is not None and w.process.is_alive() else None)
                for n, w in self._workers.items()
            }

    def _status(self, camera: str, state: str, error: str | None) -> None:
        write_status(self.store, camera, state, error)


def write_status(store: Store, camera: str, state: str, error: str | None) -> None:
    """Set a camera's health state and error (other health fields stay); best effort, never raises."""
    try:
        with store.session() as session:
            cam = repo.get_or_create_camera(session, camera, kind="live")
            row = session.get(CameraStatusRow, cam.id)
            if row is None:
                session.add(CameraStatusRow(camera_id=cam.id, state=state, error=error, updated_at=utcnow()))
            else:
                row.state, row.error, row.updated_at = state, error, utcnow()
    except Exception:  # status is best effort
        log.warning("cannot write camera status", extra={"camera": camera}, exc_info=True)


def _exit_reason(code: int | None) -> str:
    """Why a worker that said nothing ended: its exit code, or the signal that killed it."""
    if code is not None and code < 0:
        try:
            return f"camera worker was killed ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"camera worker exited (code {code})"


def _shared(config: Config) -> str:
    """Everything of ``config`` that every camera's worker uses (all but the camera blocks)."""
    return config.model_dump_json(exclude={"cameras"})
