"""``GET /metrics``: Prometheus' scrape of the API server (see docs/metrics.md).

Served here unless ``metrics.listen`` gave the metrics an address of their own
(then 404 here) or ``metrics.enabled`` is false. With ``metrics.auth: token`` the
caller must be signed in or send an API token, of a user who may see every
camera (:func:`camsight.service.metrics.may_scrape`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from camsight.api.deps import principal_of
from camsight.api.errors import ApiError
from camsight.service.metrics import ServiceMetrics, may_scrape

router = APIRouter(tags=["metrics"])


def metrics_of(request: Request) -> ServiceMetrics | None:
    """The app's metrics (None in an app built without them)."""
    return getattr(request.app.state, "metrics", None)


def timed_search(request: Request) -> AbstractContextManager[Any]:
    """Times what it wraps into ``camsight_search_latency_seconds`` (a no-op without metrics)."""
    metrics = metrics_of(request)
    return metrics.search_latency.measure() if metrics is not None else nullcontext()


# Not in the OpenAPI document: it answers Prometheus' text format, not JSON, outside /api/v1.
@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The metrics in Prometheus' text format (OpenMetrics when the scraper asks for it)."""
    state = request.app.state
    cfg = state.config.metrics
    found = metrics_of(request)
    if found is None or not cfg.enabled:
        raise ApiError(404, "metrics are turned off (metrics.enabled in the config)")
    if getattr(state, "metrics_elsewhere", False):
        raise ApiError(404, "metrics are served on their own address (metrics.listen in the config)")
    if cfg.auth == "token":
        principal = principal_of(request)
        why = may_scrape(principal)
        if why is not None:
            raise ApiError(403, why)
    body, content_type = found.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
