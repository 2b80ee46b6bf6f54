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

    from camsight.service.supervisor import Supervisor
    from camsight.store.db import Store

log = logging.getLogger(__name__)

#: Settings of a camera given only as ``--camera NAME=URL``: it records continuously (kept 7
#: days, within storage.min_free_gb), so every search result and event has footage to play.
QUICK_START_CAMERA: dict[str, Any] = {"record": {"mode": "continuous"}}
#: Seconds the supervisor is given to stop its workers before ``serve`` returns anyway.
STOP_SECONDS = 30.0


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
    ) -> None:
        from camsight.service.supervisor import Supervisor

        unknown = sorted(set(only or ()) - set(config.cameras))
        if unknown:
            raise ConfigError(f"--only: no camera named {unknown[0]!r} in the config")
        self.config = config
        self.store = store
        self.config_path = config_path
        self.only = only
        #: Cameras that will run: enabled, with a URL, and chosen by ``only`` (all when None).
        self.live = [n for n, c in config.cameras.items() if c.url and c.enabled and (not only or n in only)]
        if not self.live and not web:
            raise ConfigError("no cameras to run: add `url:` to a camera in the config, or --camera NAME=URL")
        self.stop = threading.Event()
        self.supervisor: Supervisor = Supervisor(config, store, cameras=list(only) if only else None)
        self._worker = threading.Thread(
            target=self.supervisor.run, args=(self.stop,), name="supervisor", daemon=True
        )
        #: The one-time admin password made at the first start (None when an admin exists or it is set).
        self.one_time_password: str | None = None
        self.api: FastAPI | None = self._build_api() if web else None

    @classmethod
    def open(
        cls,
        config: Config,
        data_dir: Path,
        *,
        config_path: Path,
        only: list[str] | None = None,
        web: bool = True,
    ) -> Service:
        """Open (create, migrate) the store in ``data_dir`` and build the service on it."""
        from camsight.store.db import open_store

        store = open_store(data_dir)
        try:
            return cls(config, store, config_path=config_path, only=only, web=web)
        except BaseException:
            store.close()
            raise

    def _build_api(self) -> FastAPI:
        from camsight.api.app import create_app
        from camsight.auth.users import ADMIN_PASSWORD_ENV, bootstrap_admin
        from camsight.config.edit import ConfigFile

        self.one_time_password = bootstrap_admin(self.store, os.environ.get(ADMIN_PASSWORD_ENV))
        # The API owns the background job runner (its lifespan starts and stops it).
        api = create_app(self.config, self.store, config_path=self.config_path, supervisor=self.supervisor)
        # Which cameras came from --camera is known now, before anyone edits the file by hand.
        api.state.config_file = ConfigFile.from_running(self.config_path, self.config)
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
            self._worker.start()
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

        assert self.api is not None
        server = uvicorn.Server(
            uvicorn.Config(self.api, host=host, port=port, log_level="warning", access_log=False)
        )
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

    def close(self) -> None:
        """Stop the cameras (waiting up to :data:`STOP_SECONDS`) and close the store; idempotent."""
        self.stop.set()
        if self._worker.is_alive():
            self._worker.join(STOP_SECONDS)
        self.store.close()
