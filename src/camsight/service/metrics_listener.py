"""The metrics on an address of their own (``metrics.listen``), apart from the API server.

An admin may keep ``/metrics`` off the API's address (e.g. the API on the LAN,
the metrics on 127.0.0.1 or a management network). The listener answers only
``GET /metrics``, with the same token check as the API when ``metrics.auth`` is
``token``; both it and ``enabled`` are read from the running config on each request.

>>> listener = MetricsListener(metrics, store, lambda: config, "127.0.0.1", 9108)  # doctest: +SKIP
>>> listener.start(); ...; listener.stop()                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from camsight.auth import login
from camsight.config import Config
from camsight.errors import CamsightError
from camsight.service.metrics import ServiceMetrics, may_scrape
from camsight.store.db import Store

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
#: The API's codes (camsight.api.errors.CODES) for the statuses answered here.
_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
}


class MetricsListenError(CamsightError):
    """The metrics listener cannot open its address (in use, or not this machine's)."""


class _Server(ThreadingMixIn, WSGIServer):
    # A slow scraper must not hold up the next one; nothing waits for these threads at exit.
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # One line per scrape every 15 s would drown the service's log.
        log.debug("metrics listener: " + format, *args)


class MetricsListener:
    """Serves ``metrics`` at ``http://host:port/metrics`` from a thread until :meth:`stop`."""

    def __init__(
        self, metrics: ServiceMetrics, store: Store, config: Callable[[], Config], host: str, port: int
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.config = config
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the address and serve from a background thread; :class:`MetricsListenError` if it cannot."""
        server_class = _Server6 if ":" in self.host else _Server
        try:
            self._server = make_server(
                self.host, self.port, self._app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise MetricsListenError(
                f"cannot serve the metrics on {self.host}:{self.port} ({exc.strerror or exc}): "
                "is the port in use, or the address not this machine's? Change metrics.listen"
            ) from None
        self.port = self._server.server_address[1]  # the real one when 0 was asked for
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        log.info("metrics served on %s:%d", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and close the address; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        cfg = self.config().metrics
        if environ.get("PATH_INFO") != "/metrics" or not cfg.enabled:
            return _text(start_response, 404, "not found: the metrics are at /metrics")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _text(start_response, 405, "only GET and HEAD", [("Allow", "GET, HEAD")])
        if cfg.auth == "token":
            refused = self._refused(environ.get("HTTP_AUTHORIZATION", ""))
            if refused is not None:
                return refused(start_response)
        try:
            body, content_type = self.metrics.exposition(environ.get("HTTP_ACCEPT"))
        except Exception:  # a scrape failure is the scraper's to see, as a status, not a dropped socket
            log.exception("metrics listener: cannot collect the metrics")
            return _text(start_response, 500, "cannot collect the metrics; see the log")
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def _refused(self, header: str) -> Callable[[StartResponse], Iterable[bytes]] | None:
        """Why a scrape with this ``Authorization`` header is refused (a response), or None."""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        principal = (
            login.authenticate(self.store, api_token=token) if scheme.lower() == "bearer" and token else None
        )
        if principal is None:
            message = "send Authorization: Bearer <API token> (none given, or unknown, revoked or expired)"
            return lambda sr: _text(sr, 401, message, [("WWW-Authenticate", "Bearer")])
        why = may_scrape(principal)
        if why is not None:
            return lambda sr: _text(sr, 403, why)
        return None


def _text(
    start_response: StartResponse, status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    """An error in the API's shape (``{"error": {"status", "code", "message"}}``)."""
    code = _CODES[status]
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]
