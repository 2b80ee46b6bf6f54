"""Signing in and out, who am I, changing one's own password."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from camsight.api.deps import (
    SESSION_COOKIE,
    CurrentPrincipal,
    StoreDep,
    check_same_origin,
    client_ip,
)
from camsight.api.errors import ApiError
from camsight.api.schemas import LoginOut, MeOut, PasswordOut, errors
from camsight.auth import login
from camsight.auth.errors import InvalidCredentials
from camsight.auth.roles import permissions

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class PasswordIn(BaseModel):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


def _set_cookie(request: Request, response: Response, token: str, expires_at: datetime) -> None:
    expires = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int((expires - datetime.now(UTC)).total_seconds())),
        path="/",
        httponly=True,  # not readable by scripts: an XSS cannot steal the session
        samesite="strict",  # never sent on cross-site requests (CSRF)
        secure=request.url.scheme == "https",  # plain http only for localhost/dev setups
    )


def _clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


@router.post("/login", response_model=LoginOut, responses=errors(401, 429))
def sign_in(body: LoginIn, request: Request, response: Response, store: StoreDep) -> dict[str, Any]:
    """Check name and password, start a session (cookie ``camsight_session``). Audited by the library."""
    check_same_origin(request)  # login CSRF: a foreign page must not sign the browser in
    result = login.login(
        store,
        body.name,
        body.password,
        ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:256] or None,
    )
    _set_cookie(request, response, result.token, result.expires_at)
    return {"user": result.user.to_dict(), "expires_at": result.expires_at.isoformat()}


@router.post("/logout", status_code=204)
def sign_out(request: Request, principal: CurrentPrincipal, store: StoreDep) -> Response:
    """End this browser session and clear the cookie (API tokens are revoked under /tokens)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        login.logout(store, cookie, ip=client_ip(request))
    response = Response(status_code=204)
    _clear_cookie(request, response)
    return response


@router.get("/me", response_model=MeOut)
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    """The signed-in user, how they authenticated, and what their role may do (for the UI's menus)."""
    allowed = sorted(p.value for p in permissions(principal.user))
    return {"user": principal.user.to_dict(), "via": principal.via, "permissions": allowed}


@router.post("/password", response_model=PasswordOut, responses=errors(429))
def change_password(
    body: PasswordIn, request: Request, response: Response, principal: CurrentPrincipal, store: StoreDep
) -> dict[str, Any]:
    """Change one's own password (the current one is required); all sessions end.

    A wrong current password counts as a failed sign-in (the same rate limit, 429 when
    exceeded) and is audited. A browser caller gets a fresh session at once so the change
    does not sign them out.
    """
    ip = client_ip(request)
    try:
        info = login.change_password(store, principal.name, body.current, body.new, ip=ip)
    except InvalidCredentials as exc:
        # 400, not 401: the session is fine, only the typed current password is wrong.
        raise ApiError(400, str(exc), code="wrong_password") from None
    if principal.via == "session":
        result = login.login(store, principal.name, body.new, ip=ip)
        _set_cookie(request, response, result.token, result.expires_at)
    return {"user": info.to_dict()}
