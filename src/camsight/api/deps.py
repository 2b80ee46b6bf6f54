"""Request dependencies: the store, the caller (cookie or API token), permissions, pagination.

Every protected router depends on :func:`current_principal`; endpoints add
:func:`require` for a permission and :func:`visible_camera` for camera access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from camsight.api.errors import ApiError
from camsight.auth import login
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission
from camsight.config import Config
from camsight.store.db import Store
from camsight.store.models import Camera

API_PREFIX = "/api/v1"
SESSION_COOKIE = "camsight_session"
MAX_QUERY = 500
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: What a user with a one-time or temporary password may still do.
PASSWORD_CHANGE_PATHS = frozenset(
    {f"{API_PREFIX}/auth/me", f"{API_PREFIX}/auth/password", f"{API_PREFIX}/auth/logout"}
)


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_config(request: Request) -> Config:
    return request.app.state.config


def client_ip(request: Request) -> str | None:
    """The peer address (uvicorn's ``--proxy-headers`` rewrites it behind a trusted proxy)."""
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: Request) -> None:
    """Refuse a cross-site unsafe request (CSRF): the Origin, else Referer, must be this server.

    Browsers send Origin on cross-site POSTs; SameSite=Strict already keeps the cookie
    off them, this is the second line. Requests with neither header (curl, scripts) pass.
    """
    if request.method not in UNSAFE_METHODS:
        return
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    referer = request.headers.get("referer")
    if origin is not None:
        if origin.strip().lower() != own:
            raise ApiError(403, "cross-site request refused (Origin does not match)", code="csrf")
    elif referer is not None and _origin_of(referer) != own:
        raise ApiError(403, "cross-site request refused (Referer does not match)", code="csrf")


def principal_of(request: Request) -> Principal:
    """The authenticated caller, or 401. An API token wins over the cookie when both are sent.

    Reads the database: call it from a worker thread (:func:`current_principal` does).
    """
    store = get_store(request)
    api_token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = login.authenticate(
        store, session_token=cookie if not api_token else None, api_token=api_token
    )
    if principal is None:
        raise ApiError(
            401, "sign in first: no valid session or API token", headers={"WWW-Authenticate": "Bearer"}
        )
    if principal.via == "session":
        check_same_origin(request)
    if principal.user.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise ApiError(
            403,
            "you must change your password first (POST /api/v1/auth/password)",
            code="password_change_required",
        )
    request.state.principal = principal
    return principal


#: Sign-in checks run at once, the others waiting in arrival order. As a plain (sync) dependency
#: each request's check took a thread of Starlette's pool of 40: with 30 clients, 30 threads
#: interleaved on the GIL and whichever the scheduler favoured overtook the rest, which spread
#: the response times (search p95 three times its p50). A check is one indexed read.
_AUTH_SLOTS = anyio.CapacityLimiter(2)


async def current_principal(request: Request) -> Principal:
    """The authenticated caller, or 401 (:func:`principal_of` in a worker thread, in turn)."""
    return await anyio.to_thread.run_sync(principal_of, request, limiter=_AUTH_SLOTS)


async def _store_dep(request: Request) -> Store:
    # Async (it does no I/O): a sync dependency costs each request a trip through the thread pool.
    return get_store(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
StoreDep = Annotated[Store, Depends(_store_dep)]


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that answers 403 unless the caller's role has ``permission``."""

    # Async like _store_dep: a check in memory needs no worker thread.
    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise ApiError(
                403, f"your role ({principal.user.role}) may not {permission.value.replace('_', ' ')}"
            )
        return principal

    check.__name__ = f"require_{permission.value}"
    return check


def not_found_camera(name: str) -> ApiError:
    # Same words whether the camera is missing or hidden from this user: nothing leaks.
    return ApiError(404, f"no camera named {name!r}")


def can_see(principal: Principal, camera: str) -> bool:
    scope = principal.camera_scope()
    return not principal.user.disabled and (scope is None or camera in scope)


def visible_camera(store: Store, principal: Principal, name: str, config: Config | None = None) -> None:
    """404 unless the camera ``name`` exists and the caller may see it (the same words either way).

    A camera exists when the store knows it or, given ``config``, the config names it (a live
    camera just added has no rows yet).
    """
    if not can_see(principal, name):
        raise not_found_camera(name)
    if config is not None and name in config.cameras:
        return
    with store.sessions() as session:
        found = session.execute(select(Camera.id).where(Camera.name == name)).first()
    if found is None:
        raise not_found_camera(name)


def visible_camera_names(store: Store, principal: Principal) -> list[str]:
    """Existing cameras the caller may see, by name."""
    with store.sessions() as session:
        names = list(session.execute(select(Camera.name).order_by(Camera.name)).scalars())
    return [n for n in names if can_see(principal, n)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def slice(self, items: Sequence[Any]) -> list[Any]:
        return list(items[self.offset : self.offset + self.limit])


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many items.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Skip this many items.")] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]


class PageOut(BaseModel):
    """A page of a list: the items, how many there are in all, and the window asked for."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def page_out(items: list[dict[str, Any]], total: int, page: Page) -> PageOut:
    return PageOut(items=items, total=total, limit=page.limit, offset=page.offset)


def declared_length(request: Request, limit: int, too_large: str) -> int | None:
    """The request's Content-Length, checked before any of the body is read.

    400 when it is not a number, 413 with ``too_large`` when it is above ``limit``; None when absent
    (chunked): the caller must then count what it reads.
    """
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.strip().isdigit():
        raise ApiError(400, "Content-Length is not a number")
    if int(declared) > limit:
        raise ApiError(413, too_large)
    return int(declared)


#: A database id in a path: positive and within SQL's 64-bit integers (larger ones cannot exist).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A database id.")]
