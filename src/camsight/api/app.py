"""Building and serving the API application.

>>> app = create_app(Config(), open_store(Path("/var/lib/camsight")))  # doctest: +SKIP
>>> serve(Config(), store, host="127.0.0.1", port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from camsight.api.deps import API_PREFIX, current_principal
from camsight.api.errors import install_error_handlers
from camsight.api.routes import admin, auth, events, tracks
from camsight.config import Config
from camsight.store.db import Store


def create_app(config: Config, store: Store) -> FastAPI:
    """The API on ``store``; every route but login and health needs a session or API token."""
    app = FastAPI(
        title="camsight",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.config = config
    app.state.store = store
    app.state.engine = None  # made on the first search: loading the index takes a moment
    install_error_handlers(app)

    @app.get(f"{API_PREFIX}/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness probe: no credentials, no details."""
        return {"status": "ok"}

    app.include_router(auth.router, prefix=API_PREFIX)
    protected = [Depends(current_principal)]
    for router in (tracks.router, events.router, admin.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=protected)
    return app


def serve(config: Config, store: Store, *, host: str = "127.0.0.1", port: int = 8080, **uvicorn: Any) -> None:
    """Run the API with uvicorn until interrupted (blocking); what ``camsight run`` calls.

    ``proxy_headers`` is on only for ``forwarded_allow_ips`` (default: localhost), so the
    client address and https scheme (Secure cookies) are right behind a local reverse proxy.
    """
    import uvicorn as server

    server.run(create_app(config, store), host=host, port=port, log_level="info", **uvicorn)
