"""The one place where camsight is wired together: what ``camsight run`` starts.

:class:`Service` builds the store, the cameras' supervisor (which runs the
camera workers, alert delivery and retention), the background job runner and
the HTTP API, serves them, and stops everything cleanly on Ctrl-C or SIGTERM.
The CLI only parses arguments and prints; tests build a :class:`Service` the
same way.

Example::

    >>> cfg = with_quick_start_cameras(Config(), {"lobby": "/videos/lobby.mp4"})
    >>> cfg.cameras["lobby"].record.mode
    'continuous'
    >>> data = Path("/tmp/cs")
    >>> service = Service.open(cfg, data, config_path=data / "config.yaml")  # doctest: +SKIP
    >>> service.serve("127.0.0.1", 8080, say=print)                          # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camsight.config import Config, validate_config
from camsight.errors import CamsightError, ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from camsight.service.metrics_listener import MetricsListener
    from camsight.service.supervisor import Supervisor
    from camsight.store.db import Store

log = logging.getLogger(__name__)

#: Settings of a camera given only as ``--camera NAME=URL``: it records continuously (kept 7
#: days, within storage.min_free_gb), so every search result and event has footage to play.
QUICK_START_CAMERA: dict[str, Any] = {"record": {"mode": "continuous"}}
#: Seconds the supervisor is given to stop its workers before ``serve`` returns anyway.
STOP_SECONDS = 30.0
#: Seconds between looks at the config file for hand edits.
RELOAD_SECONDS = 2.0


class ServeError(CamsightError):
    """The API could not be served (the port is taken, the address is not this machine's)."""


def with_quick_start_cameras(config: Config, cameras: Mapping[str, str]) -> Config:
    """``config`` plus cameras given as name -> URL; a configured camera keeps its own settings.

    >>> with_quick_start_cameras(Config(), {"gate": "rtsp://cam/live"}).cameras["gate"].url
    'rtsp://cam/live'
    """
    if not cameras:
        return config
    extra: dict[str, Any] = {}
    for name, url in cameras.items():
        known = config.cameras.get(name)
        base = known.model_dump(mode="json", by_alias=True) if known is not None else QUICK_START_CAMERA
        extra[name] = {**base, "url": url}
    data = config.model_dump(mode="json", by_alias=True)
    data["cameras"] = {**data.get("cameras", {}), **extra}
    return validate_config(data, "--camera")


class Service:
    """camsight's long-running service: cameras, alerts, retention, jobs and the API, on one store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        config_path: Path,
        only: list[str] | None = None,
        web: bool = True,
        quick_cameras: Mapping[str, str] | None = None,
        reload_seconds: float = RELOAD_SECONDS,
        node: str | None = None,
        node_url: str | None = None,
    ) -> None:
        from camsight.service.nodes import Heartbeat, NodeContext
        from camsight.service.supervisor import Supervisor

        unknown = sorted(set(only or ()) - set(config.cameras))
        if unknown:
            raise ConfigError(f"--only: no camera named {unknown[0]!r} in the config")
        elsewhere = [n for n in only or () if config.node_of(n) != node]
        if elsewhere:
            owner = config.node_of(elsewhere[0])
            runs_on = f"node {owner!r}" if owner else "a process without --node"
            raise ConfigError(
                f"--only: camera {elsewhere[0]!r} runs on {runs_on} (its `node:`, or nodes.default)"
            )
        if config.alerts.sink_names():
            from camsight.alerts.dispatcher import check_sinks
            from camsight.alerts.links import EventLinks

            # A missing secret, an unusable notifier URL or a broken link key: one line now,
            # rather than the alert thread failing later.
            check_sinks(config.alerts)
            EventLinks.from_config(config, store.root)
        #: This process as a node of several (``--node``): name, shared secret (required), settings.
        self.node = NodeContext.for_process(node, config.nodes, node_url)
        store.node = node
        self.config = config
        self.store = store
        self.config_path = config_path
        self.only = only
        #: Cameras given on the command line (name -> URL), kept beside the file's on a reload.
        self.quick_cameras = dict(quick_cameras or {})
        self.reload_seconds = reload_seconds
        #: Why the config file on disk is not the running config (None when it is, or was applied).
        self.config_problem: str | None = None
        self._file_stamp = _stamp(config_path)
        #: Cameras that will run: enabled, with a URL, and chosen by ``only`` (all when None).
        self.live = [
            n
            for n, c in config.cameras.items()
            if c.url and c.enabled and (not only or n in only) and config.node_of(n) == node
        ]
        if node is not None and (nobody := config.unassigned_cameras()):
            from camsight.config.nodes import unassigned_warning

            log.warning("%s", unassigned_warning(nobody))
        if not self.live and not web:
            raise ConfigError("no cameras to run: add `url:` to a camera in the config, or --camera NAME=URL")
        self.stop = threading.Event()
        self.supervisor: Supervisor = Supervisor(
            config, store, cameras=list(only) if only else None, node=node
        )
        from camsight.service.metrics import ServiceMetrics

        #: Prometheus metrics (docs/metrics.md), on the API server or their own listener (metrics.listen).
        self.metrics = ServiceMetrics(store, lambda: self.running_config())
        self.metrics_listener: MetricsListener | None = None
        self._worker = threading.Thread(
            target=self.supervisor.run, args=(self.stop,), name="supervisor", daemon=True
        )
        self._watcher = threading.Thread(target=self._watch_config, name="config-reload", daemon=True)
        #: The one-time admin password made at the first start (None when an admin exists or it is set).
        self.one_time_password: str | None = None
        self.api: FastAPI | None = self._build_api() if web else None
        #: The node's heartbeat in the shared database (None: not a node).
        self.heartbeat: Heartbeat | None = None
        if node is not None:
            if node_url is None:
                raise ConfigError("--node needs the URL the other nodes reach this one at (--node-url)")
            self.heartbeat = Heartbeat(store, self.node, lambda: list(self.supervisor.cameras))
            self.heartbeat.register()  # NodeConflict when a running process has this name

    @classmethod
    def open(cls, config: Config, data_dir: Path, *, config_path: Path, **options: Any) -> Service:
        """Open (create, migrate) the store in ``data_dir`` and build the service on it (``options``
        as for the constructor)."""
        from camsight.store.db import open_store, url_for

        store = open_store(data_dir, url=url_for(config.store))
        try:
            return cls(config, store, config_path=config_path, **options)
        except BaseException:
            store.close()
            raise

    def _build_api(self) -> FastAPI:
        from camsight.api.app import create_app
        from camsight.auth.users import ADMIN_PASSWORD_ENV, bootstrap_admin
        from camsight.config.edit import ConfigFile

        self.one_time_password = bootstrap_admin(self.store, os.environ.get(ADMIN_PASSWORD_ENV))
        # The API owns the background job runner (its lifespan starts and stops it).
        api = create_app(
            self.config,
            self.store,
            config_path=self.config_path,
            supervisor=self.supervisor,
            metrics=self.metrics,
        )
        # Which cameras came from --camera is known now, before anyone edits the file by hand.
        api.state.config_file = ConfigFile.from_running(self.config_path, self.config)
        api.state.node = self.node
        return api

    def serve(
        self, host: str = "127.0.0.1", port: int = 8080, *, say: Callable[[str], None] = log.info
    ) -> None:
        """Run until Ctrl-C or SIGTERM (blocking), then stop every camera and close the store.

        With the API, uvicorn handles the signals while serving and raises them
        again once it has stopped; the handlers installed here then stop the
        cameras too. ``say`` receives the lines a person starting it wants to
        read (where to open the web app, the one-time password).
        """

        def on_signal(_signum: int, _frame: object) -> None:
            self.stop.set()

        try:
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            self._start_metrics_listener(say)
            if self.api is not None:
                self.supervisor.api_address = (host, port)  # the links in alerts point here by default
            if self.heartbeat is not None:
                self.heartbeat.start()
            self._worker.start()
            self._watcher.start()
            if self.api is None:
                say("Ctrl-C stops")
                while self._worker.is_alive():
                    self._worker.join(0.5)
            else:
                self._serve_api(host, port, say)
        finally:
            self.close()

    def _serve_api(self, host: str, port: int, say: Callable[[str], None]) -> None:
        import uvicorn

        from camsight.api.app import server_config

        assert self.api is not None
        # Proxy headers only from api.trusted_proxies, and the Host check for this address.
        server = uvicorn.Server(server_config(self.api, host, port, log_level="warning", access_log=False))
        # Long responses (a live view) end when they see the server stopping, so Ctrl-C is not held up.
        self.api.state.server = server
        # What start-up built (config, routes, schemas, the store's metadata) lives as long as the
        # process: keep it out of the garbage collector's full passes, which walked all of it again
        # and again under a stream of searches (the usual gc.freeze() of long-running servers).
        gc.collect()
        gc.freeze()
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        say(
            f"camsight: http://{shown}:{port}/ in a browser; API at /api/v1/ "
            "(documentation: /api/v1/docs); Ctrl-C stops"
        )
        if self.one_time_password is not None:
            say(
                f"first sign-in: user admin, one-time password {self.one_time_password} "
                "(shown once; you will be asked to choose a new one)"
            )
        try:
            server.run()
        except SystemExit:
            pass  # uvicorn exits when it cannot bind; said below
        if not server.started:
            raise ServeError(
                f"cannot serve on {host}:{port} (is the port in use? choose another with --port)"
            )

    # ----------------------------------------------------------------------- config reload

    def running_config(self) -> Config:
        """The config in force: the API's (edits over the API land there first), else the service's."""
        return self.api.state.config if self.api is not None else self.config

    def reload_config(self) -> bool:
        """Apply the config file as it is on disk now, like an edit over the API.

        Returns True when it changed what runs. A file that does not validate
        changes nothing: the running config stays in force, and the reason is
        logged (once per reason) and kept in :attr:`config_problem`.
        """
        from camsight.config import load_config

        self._file_stamp = _stamp(self.config_path)
        if self._file_stamp is None:
            return False  # no file (yet): the running config came from defaults and --camera
        try:
            config = load_config(self.config_path)
            quick = {n: u for n, u in self.quick_cameras.items() if n not in config.cameras}
            config = with_quick_start_cameras(config, quick)
        except ConfigError as exc:
            if str(exc) != self.config_problem:
                log.warning("config file not applied; the running config stays in force: %s", exc)
            self.config_problem = str(exc)
            return False
        self.config_problem = None
        if config == self.running_config():
            return False  # e.g. the API's own save
        self.config = config
        if self.api is not None:
            self.api.state.config = config
            self.api.state.config_file = None  # the editor reads the file again on the next edit
        self.supervisor.apply(config)
        log.warning("config file changed: applied %s", self.config_path)
        return True

    def _watch_config(self) -> None:
        while not self.stop.wait(self.reload_seconds):
            if _stamp(self.config_path) == self._file_stamp:
                continue
            try:
                self.reload_config()
            except Exception:  # a reload must never take the service down
                log.exception("config reload failed")

    def _start_metrics_listener(self, say: Callable[[str], None]) -> None:
        """Serve the metrics on ``metrics.listen`` when the config gives them an address of their own."""
        cfg = self.config.metrics
        address = cfg.address()
        if not cfg.enabled or address is None:
            return
        from camsight.service.metrics_listener import MetricsListener, MetricsListenError

        listener = MetricsListener(self.metrics, self.store, self.running_config, *address)
        try:
            listener.start()
        except MetricsListenError as exc:
            raise ServeError(str(exc)) from None
        self.metrics_listener = listener
        token = " (API token required)" if cfg.auth == "token" else ""
        say(f"metrics: http://{cfg.listen}/metrics{token}")

    def close(self) -> None:
        """Stop the cameras (waiting up to :data:`STOP_SECONDS`) and close the store; idempotent."""
        self.stop.set()
        if self._worker.is_alive():
            self._worker.join(STOP_SECONDS)
        if self.metrics_listener is not None:
            self.metrics_listener.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        self.store.close()


def _stamp(path: Path) -> tuple[int, int] | None:
    """What tells a changed file: its modification time and size (None when it does not exist)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
