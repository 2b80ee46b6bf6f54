"""Building and serving the API application.

>>> app = create_app(Config(), open_store(Path("/var/lib/camsight")))  # doctest: +SKIP
>>> serve(Config(), store, host="127.0.0.1", port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Receive, Scope, Send

from camsight.api.deps import API_PREFIX, current_principal
from camsight.api.errors import error_response, install_error_handlers
from camsight.api.routes import admin, auth, cameras, clips, events, holds, live, tracks, uploads
from camsight.api.routes import links as link_routes
from camsight.api.routes import metrics as metrics_routes
from camsight.api.routes import nodes as node_routes
from camsight.api.schemas import document_errors
from camsight.config import Config
from camsight.service.jobs import JobRunner
from camsight.service.nodes import NodeContext
from camsight.store.db import Store
from camsight.web.site import mount_site

if TYPE_CHECKING:
    import uvicorn

    from camsight.service.metrics import ServiceMetrics
    from camsight.service.supervisor import Supervisor

log = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the indexing jobs while the server runs; a job cut short is queued again for the next start.

    The search index is loaded in the background at start, so the first search does not pay for it
    (about a second per 100,000 tracks).
    """
    app.state.jobs.start()
    threading.Thread(target=_warm_search, args=(app,), name="search-warmup", daemon=True).start()
    try:
        yield
    finally:
        app.state.jobs.stop()


def _warm_search(app: FastAPI) -> None:
    try:
        tracks.engine_of_state(app.state).index_cache.get()
    except Exception:  # a broken store shows in the first search's answer; the server must still start
        log.warning("cannot load the search index at start", exc_info=True)


class HostCheck:
    """Answer 400 to a request whose ``Host`` does not name this server (``api.allowed_hosts``).

    A DNS rebinding page (``http://evil.example:8080/`` pointed at 127.0.0.1) is same-origin
    with itself, so its requests carry a matching ``Origin`` and pass the CSRF check; only
    its ``Host`` header gives it away. Checked once the app is served (see
    :func:`server_config`): ``app.state.bind_host`` is then the listening address.
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bind_host = getattr(self.state, "bind_host", None)
        if scope["type"] in ("http", "websocket") and bind_host is not None:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if not self.state.config.api.host_allowed(host, bind_host):
                shown = host[:100] or "(none)"
                message = (
                    f"this server does not answer to host {shown!r}: add the name to api.allowed_hosts "
                    "in the config if it is really this server (refused to stop DNS rebinding)"
                )
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await error_response(400, message, "bad_host")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    config: Config,
    store: Store,
    *,
    config_path: Path | None = None,
    supervisor: Supervisor | None = None,
    bind_host: str | None = None,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """The API on ``store``; every route but login and health needs a session or API token.

    ``config_path`` is the file camera changes are saved to (none: they are refused);
    ``supervisor`` runs the live cameras and is told about those changes. ``bind_host``, the
    address it is served on, turns the ``Host`` check on (:class:`HostCheck`;
    :func:`server_config` sets it too); in-process test clients leave it out. ``metrics``: the
    service's Prometheus registry (one on ``store`` is made when left out).
    """
    # The documentation page's Swagger UI is served from a package, not a CDN: the box may be offline.
    app = FastAPIOffline(
        static_url=f"{API_PREFIX}/docs-static",
        title="camsight",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.config = config
    app.state.store = store
    app.state.config_path = config_path
    app.state.supervisor = supervisor
    app.state.engine = None  # made by the warm-up at start (see _lifespan) or by the first search
    app.state.bind_host = bind_host
    if metrics is None:
        from camsight.service.metrics import ServiceMetrics

        metrics = ServiceMetrics(store, lambda: app.state.config)
    app.state.metrics = metrics
    # Where the metrics are served is read once, like the listener's address (metrics.listen).
    app.state.metrics_elsewhere = config.metrics.enabled and config.metrics.listen is not None
    app.add_middleware(HostCheck, state=app.state)
    # Each job reads app.state.config when it starts, so it sees config changes made meanwhile.
    app.state.jobs = JobRunner(store, lambda: app.state.config)
    install_error_handlers(app)

    # Which node this is, and the secret the nodes share (camsight run --node sets its own).
    app.state.node = NodeContext.for_process(None, config.nodes)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness probe: no credentials. With several nodes on the database, also each node's
        state (``up``, ``down``, ``stopped``) by name, so any node shows which are down."""
        out: dict[str, Any] = {"status": "ok"}
        context: NodeContext = app.state.node
        try:
            states = context.states(store)
        except Exception:  # the database is away: this process still lives
            log.warning("cannot read the nodes' heartbeats", exc_info=True)
            return out
        if context.name is not None or states:
            out["node"] = context.name
            out["nodes"] = {n.name: n.state for n in states}
        return out

    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(metrics_routes.router)  # /metrics, where Prometheus looks; checks its own auth
    # Signed links from alerts: the link is the permission (one event's media, until it expires).
    app.include_router(link_routes.router, prefix=API_PREFIX)
    # The node routes check a node signature (or, for /nodes, a user) themselves.
    app.include_router(node_routes.router, prefix=API_PREFIX)
    protected = [Depends(current_principal)]
    routers = (tracks.router, events.router, cameras.router, admin.router, clips.router, uploads.router)
    for router in (*routers, holds.router, live.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=protected)
    document_errors(app)
    mount_site(app)
    return app


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for serving ``app`` on ``host``:``port``, as ``camsight run`` does.

    The ``Host`` check is turned on for ``host``. ``X-Forwarded-For`` and ``X-Forwarded-Proto``
    are believed only from ``api.trusted_proxies`` (none by default; uvicorn alone would trust
    127.0.0.1, so anything on this machine could forge its address past the sign-in limits
    and into the audit log).
    """
    import uvicorn

    proxies = list(app.state.config.api.trusted_proxies)
    app.state.bind_host = host
    return uvicorn.Config(
        app, host=host, port=port, proxy_headers=bool(proxies), forwarded_allow_ips=proxies, **options
    )


def serve(config: Config, store: Store, *, host: str = "127.0.0.1", port: int = 8080, **uvicorn: Any) -> None:
    """Run the API with uvicorn until interrupted (blocking), with :func:`server_config`'s settings.

    Behind a reverse proxy, name it in ``api.trusted_proxies`` so the client address and the
    https scheme (Secure cookies) are right, and its public name in ``api.allowed_hosts``.
    """
    import uvicorn as server

    options = {"log_level": "info", **uvicorn}
    server.Server(server_config(create_app(config, store), host, port, **options)).run()
