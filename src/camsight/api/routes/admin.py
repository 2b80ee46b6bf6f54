"""Administration: users, API tokens and the audit log (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from camsight.api.deps import (
    CurrentPrincipal,
    PageDep,
    PageOut,
    RowId,
    StoreDep,
    client_ip,
    page_out,
    require,
)
from camsight.api.errors import ApiError
from camsight.api.schemas import (
    AuditEntryOut,
    AuditVerifyOut,
    NewTokenOut,
    NewUserOut,
    PageOf,
    PasswordResetOut,
    RevokedTokensOut,
    TokenOut,
    UserOut,
    errors,
)
from camsight.auth import audit, tokens, users
from camsight.auth.principal import Principal
from camsight.auth.roles import Permission, Role
from camsight.store.models import AuditLogRow
from camsight.timeutil import aware

router = APIRouter(tags=["admin"])
UserAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]
Auditor = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]

#: The roles, as the document lists them (the server also takes them in any case, padded).
_ROLES: dict[str, Any] = {"enum": [r.value for r in Role]}


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    #: None (or absent): the server makes a one-time password and answers it once.
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    role: str = Field(min_length=1, max_length=16, json_schema_extra=_ROLES)
    #: None (or absent): every camera.
    cameras: list[Annotated[str, Field(max_length=128)]] | None = Field(default=None, max_length=1000)
    must_change_password: bool = True


class UserPatch(BaseModel):
    """Only the fields sent change; ``cameras: null`` means every camera."""

    role: str | None = Field(default=None, min_length=1, max_length=16, json_schema_extra=_ROLES)
    cameras: list[Annotated[str, Field(max_length=128)]] | None = Field(default=None, max_length=1000)
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    must_change_password: bool = True


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    #: Whose token; the caller's own when absent.
    user: str | None = Field(default=None, max_length=64)
    expires_at: datetime | None = None


@router.get("/users", response_model=PageOf[UserOut])
def list_users(principal: UserAdmin, store: StoreDep, page: PageDep) -> PageOut:
    with store.sessions() as session:
        found = users.list_users(session)
    return page_out([u.to_dict() for u in page.slice(found)], len(found), page)


@router.post("/users", response_model=NewUserOut, status_code=201, responses=errors(404, 409))
def create_user(request: Request, body: UserIn, principal: UserAdmin, store: StoreDep) -> dict[str, Any]:
    """Create a user; audited. New users must change the password by default.

    Without ``password`` the server generates a one-time password, answered once as
    ``one_time_password``; the user must change it at the first sign-in.
    """
    generated = users.generate_password() if body.password is None else None
    with store.session() as session:
        info = users.create_user(
            session,
            body.name,
            body.password or generated or "",
            body.role,
            by=principal.actor(client_ip(request)),
            cameras=body.cameras,
            must_change_password=body.must_change_password or generated is not None,
            # A camera in the config that has not run yet is a camera too (as for the CLI).
            known_cameras=request.app.state.config.cameras,
        )
    return info.to_dict() | ({"one_time_password": generated} if generated else {})


@router.patch("/users/{name}", response_model=UserOut, responses=errors(404, 409))
def update_user(
    request: Request, name: str, body: UserPatch, principal: UserAdmin, store: StoreDep
) -> dict[str, Any]:
    """Change role, cameras, disabled and/or set a (temporary) password; each change audited.

    Disabling ends the user's sessions and stops their API tokens at once. 409 for disabling
    or demoting the last enabled admin, or disabling oneself.
    """
    by = principal.actor(client_ip(request))
    sent = body.model_fields_set
    with store.session() as session:
        info = users.update_user(
            session,
            name,
            by=by,
            role=body.role,
            cameras=body.cameras if "cameras" in sent else users.KEEP,
            disabled=body.disabled,
            known_cameras=request.app.state.config.cameras,
        )
        if body.password is not None:
            info = users.set_password(
                session, name, body.password, by=by, must_change=body.must_change_password
            )
    return info.to_dict()


@router.delete("/users/{name}", status_code=204, responses=errors(404, 409))
def delete_user(request: Request, name: str, principal: UserAdmin, store: StoreDep) -> Response:
    """Remove a user with their sessions and tokens (their audit entries stay); audited.

    409 for the last enabled admin, or oneself.
    """
    with store.session() as session:
        users.delete_user(session, name, by=principal.actor(client_ip(request)))
    return Response(status_code=204)


@router.post(
    "/users/{name}/password-reset",
    response_model=PasswordResetOut,
    responses=errors(404, 409, s409="an admin resets others' passwords; one's own is changed instead"),
)
def reset_password(
    request: Request,
    name: Annotated[str, FastPath(min_length=1, max_length=64)],
    principal: UserAdmin,
    store: StoreDep,
) -> dict[str, Any]:
    """Give a user a new one-time password, in this answer only; audited.

    The user's sessions end and they must choose their own password at the next sign-in;
    their API tokens are left alone (revoke them under ``/users/{name}/tokens`` too when
    the reset is because of a leak).
    """
    if name.strip().lower() == principal.name:
        raise ApiError(
            409, "reset other users' passwords here; change your own with POST /api/v1/auth/password"
        )
    with store.session() as session:
        info, password = users.reset_password(session, name, by=principal.actor(client_ip(request)))
    return {"user": info.to_dict(), "password": password}


@router.get("/tokens", response_model=PageOf[TokenOut], responses=errors(404))
def list_tokens(
    principal: UserAdmin,
    store: StoreDep,
    page: PageDep,
    user: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    include_revoked: bool = False,
) -> PageOut:
    with store.sessions() as session:
        found = tokens.list_tokens(session, user, include_revoked=include_revoked)
    return page_out([t.to_dict() for t in page.slice(found)], len(found), page)


@router.post("/tokens", response_model=NewTokenOut, status_code=201, responses=errors(404))
def create_token(request: Request, body: TokenIn, principal: UserAdmin, store: StoreDep) -> dict[str, Any]:
    """Create an API token; the secret is in this answer only (it is stored hashed)."""
    with store.session() as session:
        new = tokens.create(
            session,
            body.user or principal.name,
            body.name,
            by=principal.actor(client_ip(request)),
            expires_at=aware(body.expires_at),
        )
    return {"token": new.info.to_dict(), "secret": new.secret}


@router.delete("/tokens/{token_id}", response_model=TokenOut, responses=errors(404))
def revoke_token(request: Request, token_id: RowId, principal: UserAdmin, store: StoreDep) -> dict[str, Any]:
    with store.session() as session:
        info = tokens.revoke(session, token_id, by=principal.actor(client_ip(request)))
    return info.to_dict()


@router.delete("/users/{name}/tokens", response_model=RevokedTokensOut, responses=errors(404))
def revoke_user_tokens(
    request: Request,
    name: Annotated[str, FastPath(max_length=64)],
    principal: CurrentPrincipal,
    store: StoreDep,
) -> dict[str, Any]:
    """Revoke every API token of a user at once (admins: anyone's; everyone: their own); audited.

    Tokens outlive a password change, so this is how a user who fears a token
    leaked with their password makes sure none of them works any more.
    """
    if name.strip().lower() != principal.name and not principal.can(Permission.MANAGE_USERS):
        raise ApiError(403, "you may revoke only your own tokens: DELETE /api/v1/users/<your name>/tokens")
    with store.session() as session:
        revoked = tokens.revoke_all(session, name, by=principal.actor(client_ip(request)))
    return {"user": name.strip().lower(), "count": len(revoked), "revoked": [t.to_dict() for t in revoked]}


@router.get("/audit", response_model=PageOf[AuditEntryOut])
def audit_log(
    principal: Auditor,
    store: StoreDep,
    page: PageDep,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PageOut:
    """Audit entries, newest first."""
    q = select(AuditLogRow)
    if actor:
        q = q.where(AuditLogRow.actor == actor)
    if action:
        q = q.where(AuditLogRow.action == action)
    if since is not None:
        q = q.where(AuditLogRow.at >= aware(since))
    if until is not None:
        q = q.where(AuditLogRow.at < aware(until))
    with store.sessions() as session:
        total = int(session.execute(select(func.count()).select_from(q.subquery())).scalar_one())
        rows = session.execute(
            q.order_by(AuditLogRow.id.desc()).limit(page.limit).offset(page.offset)
        ).scalars()
        items = [
            audit.AuditEntry(
                r.id, r.at, r.actor, r.action, r.target, dict(r.detail or {}), r.ip, r.prev_hash, r.hash
            ).to_dict()
            for r in rows
        ]
    return page_out(items, total, page)


@router.get(
    "/audit.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The audit log as CSV."}},
)
def audit_csv(
    request: Request,
    principal: Auditor,
    store: StoreDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    """The audit log as CSV (spreadsheet-safe cells); the export itself is audited."""
    text = audit.csv_text(store, aware(since), aware(until))
    audit.record(
        store,
        principal.actor(client_ip(request)),
        audit.Action.AUDIT_EXPORT,
        detail={"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="camsight-audit.csv"'},
    )


@router.get("/audit/verify", response_model=AuditVerifyOut)
def audit_verify(principal: Auditor, store: StoreDep) -> dict[str, Any]:
    """Walk the hash chain; ``ok`` false names the first entry that does not fit."""
    return audit.verify(store).to_dict()
