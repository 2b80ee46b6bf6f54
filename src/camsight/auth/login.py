"""Signing in and out: rate limit, password check, session, audit entry, in that order.

These are the calls a web layer makes::

    result = login(store, form.name, form.password, ip=client_ip, user_agent=ua)
    # -> set cookie result.token (Secure, HttpOnly, SameSite=Lax), expires result.expires_at
    principal = authenticate(store, session_token=cookie, api_token=bearer)
    logout(store, cookie, ip=client_ip)
    change_password(store, principal.name, form.current, form.new, ip=client_ip)

Every sign-in, successful or not, writes an audit entry; failures say why
in the entry (unknown user, wrong password, disabled, rate limited) but
the caller only ever learns "wrong user name or password".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from camsight.auth import audit, ratelimit, sessions, tokens, users
from camsight.auth.audit import Action, Actor
from camsight.auth.errors import InvalidCredentials, RateLimited
from camsight.auth.passwords import burn_verify_time, hash_password, needs_rehash, verify_password
from camsight.auth.principal import Principal, UserInfo
from camsight.auth.ratelimit import DEFAULT_POLICY, RateLimitPolicy
from camsight.store.db import Store
from camsight.store.models import UserRow, utcnow


@dataclass(frozen=True)
class LoginResult:
    """A successful sign-in. ``token`` is the session cookie's value, shown only here."""

    token: str
    session_id: int
    user: UserInfo
    expires_at: datetime

    @property
    def must_change_password(self) -> bool:
        """True after a one-time or temporary password: allow nothing but a password change."""
        return self.user.must_change_password


def _fail(
    store: Store,
    name: str,
    ip: str | None,
    reason: str,
    now: datetime,
    policy: RateLimitPolicy,
    *,
    actor: str = audit.ANONYMOUS,
) -> None:
    with store.session() as session:
        ratelimit.record_failure(session, name, ip, now=now, policy=policy)
        audit.record(session, actor, Action.LOGIN_FAILURE, target=name, detail={"reason": reason}, ip=ip)


def _check_limit(
    store: Store, name: str, ip: str | None, now: datetime, policy: RateLimitPolicy, actor: str
) -> None:
    """Raise :class:`RateLimited` if ``name`` at ``ip`` must wait, and audit the refusal."""
    try:
        with store.sessions() as session:
            ratelimit.check(session, name, ip, now=now, policy=policy)
    except RateLimited as exc:
        # Not counted as a failure: the wait must be able to run out.
        audit.record(
            store,
            actor,
            Action.LOGIN_FAILURE,
            target=name,
            detail={"reason": "rate_limited", "retry_after": exc.retry_after},
            ip=ip,
        )
        raise


def login(
    store: Store,
    name: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
    idle: timedelta = sessions.IDLE_TIMEOUT,
) -> LoginResult:
    """Check a name and password and start a session.

    Raises :class:`RateLimited` (answer 429, ``Retry-After``) before looking
    at the password when the name at this address, or the address, has failed
    too often (see :mod:`camsight.auth.ratelimit`), and
    :class:`InvalidCredentials` (answer 401) for an unknown name, a wrong
    password or a disabled account alike.
    """
    now = now or utcnow()
    typed = name.strip().lower()[:128]
    _check_limit(store, typed, ip, now, policy, audit.ANONYMOUS)
    with store.sessions() as session:
        row = session.execute(select(UserRow).where(UserRow.name == typed)).scalar_one_or_none()
        stored = (row.id, row.password_hash, row.disabled) if row is not None else None
    # Hashing happens outside any write transaction: it takes ~50 ms.
    if stored is None:
        burn_verify_time(password)
        _fail(store, typed, ip, "unknown user", now, policy)
        raise InvalidCredentials()
    user_id, password_hash, disabled = stored
    if not verify_password(password_hash, password):
        _fail(store, typed, ip, "wrong password", now, policy)
        raise InvalidCredentials()
    if disabled:
        _fail(store, typed, ip, "disabled", now, policy)
        raise InvalidCredentials()
    rehashed = hash_password(password) if needs_rehash(password_hash) else None
    new: sessions.NewSession | None = None
    with store.session() as session:
        user = session.get(UserRow, user_id, populate_existing=True)
        # Removed, disabled or given a new password while we checked: that is a failure.
        if user is not None and not user.disabled and user.password_hash == password_hash:
            if rehashed is not None:
                user.password_hash = rehashed
            user.last_login_at = now
            ratelimit.reset(session, typed, ip)
            new = sessions.create(session, user.id, ip=ip, user_agent=user_agent, now=now, idle=idle)
            audit.record(
                session,
                user.name,
                Action.LOGIN_SUCCESS,
                target=user.name,
                detail={"session_id": new.id, "must_change_password": user.must_change_password},
                ip=ip,
            )
    if new is None:
        _fail(store, typed, ip, "account changed during sign-in", now, policy)
        raise InvalidCredentials()
    return LoginResult(new.token, new.id, new.user, new.expires_at)


def change_password(
    store: Store,
    name: str,
    current: str,
    new: str,
    *,
    ip: str | None = None,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> UserInfo:
    """A signed-in user changes their own password, giving the current one; all their sessions end.

    A wrong ``current`` is a failed sign-in: counted by the same rate limit
    (so a stolen session cannot guess the password without limit) and
    audited. Raises :class:`RateLimited` before looking at the password when
    the name at this address must wait, :class:`InvalidCredentials` for a
    wrong current password.
    """
    now = now or utcnow()
    typed = name.strip().lower()[:128]
    _check_limit(store, typed, ip, now, policy, typed)
    try:
        with store.session() as session:
            info = users.set_password(session, typed, new, by=Actor(typed, ip), current_password=current)
            ratelimit.reset(session, typed, ip)
    except InvalidCredentials:
        _fail(store, typed, ip, "wrong current password (password change)", now, policy, actor=typed)
        raise
    return info


def logout(store: Store, token: str, *, ip: str | None = None, now: datetime | None = None) -> bool:
    """End the session of ``token`` and record it; False if it was not a live session."""
    with store.session() as session:
        principal = sessions.verify(session, token, now=now)
        if principal is None:
            return False
        sessions.revoke(session, token, now=now)
        audit.record(
            session,
            principal.user.name,
            Action.LOGOUT,
            target=principal.user.name,
            ip=ip,
            detail={"session_id": principal.credential_id},
        )
    return True


def authenticate(
    store: Store,
    *,
    session_token: str | None = None,
    api_token: str | None = None,
    now: datetime | None = None,
) -> Principal | None:
    """The caller of a request: an API token (``Authorization: Bearer cs_...``) if given, else the
    session cookie; None when neither is valid (answer 401)."""
    if not session_token and not api_token:
        return None
    # Nearly every request only reads: one Core query answers it. A use that must be recorded
    # (once a minute per credential) goes through verify(), which rechecks and writes.
    with store.engine.connect() as connection:
        if api_token:
            principal, record_use = tokens.peek(connection, api_token, now=now)
        else:
            principal, record_use = sessions.peek(connection, session_token, now=now)
    if not record_use:
        return principal
    with store.session() as session:
        if api_token:
            return tokens.verify(session, api_token, now=now)
        return sessions.verify(session, session_token, now=now)
