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

from camsight.api.deps import API_PREFIX, current_principal
from camsight.api.errors import install_error_handlers
from camsight.api.routes import admin, auth, cameras, clips, events, tracks, uploads
from camsight.config import Config
from camsight.service.jobs import JobRunner
from camsight.store.db import Store
from camsight.web.site import mount_site

if TYPE_CHECKING:
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


def create_app(
    config: Config, store: Store, *, config_path: Path | None = None, supervisor: Supervisor | None = None
) -> FastAPI:
    """The API on ``store``; every route but login and health needs a session or API token.

    ``config_path`` is the file camera changes are saved to (none: they are refused);
    ``supervisor`` runs the live cameras and is told about those changes.
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
    # Each job reads app.state.config when it starts, so it sees config changes made meanwhile.
    app.state.jobs = JobRunner(store, lambda: app.state.config)
    install_error_handlers(app)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness probe: no credentials, no details."""
        return {"status": "ok"}

    app.include_router(auth.router, prefix=API_PREFIX)
    protected = [Depends(current_principal)]
    for router in (tracks.router, events.router, cameras.router, admin.router, clips.router, uploads.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=protected)
    mount_site(app)
    return app


def serve(config: Config, store: Store, *, host: str = "127.0.0.1", port: int = 8080, **uvicorn: Any) -> None:
    """Run the API with uvicorn until interrupted (blocking); what ``camsight run`` calls.

    ``proxy_headers`` is on only for ``forwarded_allow_ips`` (default: localhost), so the
    client address and https scheme (Secure cookies) are right behind a local reverse proxy.
    """
    import uvicorn as server

    server.run(create_app(config, store), host=host, port=port, log_level="info", **uvicorn)
