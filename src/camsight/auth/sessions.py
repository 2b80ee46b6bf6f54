"""Browser sessions: a random token in a secure, HTTP-only cookie; only its sha256 is stored.

A session ends after ``IDLE_TIMEOUT`` without use (each use slides the
expiry forward) and in any case ``MAX_LIFETIME`` after sign-in; logout,
a password change or disabling the user revokes it at once.

Example (``db`` is a session of the store)::

    new = create(db, user.id, ip="10.0.0.7", user_agent="Firefox")
    principal = verify(db, new.token)  # None once expired or revoked
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.orm import Session

from camsight.auth.principal import Principal, UserInfo
from camsight.auth.secrets_store import find_by_secret, lookup, token_hash
from camsight.store.models import UserRow, WebSessionRow, utcnow

IDLE_TIMEOUT = timedelta(hours=12)
MAX_LIFETIME = timedelta(days=7)
#: Expiry and last-seen are written at most this often per session (not on every request).
TOUCH_EVERY = timedelta(minutes=1)
#: Expired and revoked sessions are deleted this long after they ended.
KEEP_ENDED = timedelta(days=1)
#: Longer "tokens" are not ours: refuse them before hashing.
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class NewSession:
    """A session just created: ``token`` goes into the cookie and is not kept anywhere."""

    id: int
    token: str
    user: UserInfo
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    revoked_at: datetime | None


def _expiry(created_at: datetime, now: datetime, idle: timedelta, lifetime: timedelta) -> datetime:
    return min(now + idle, created_at + lifetime)


def create(
    session: Session,
    user_id: int,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
    idle: timedelta = IDLE_TIMEOUT,
    lifetime: timedelta = MAX_LIFETIME,
) -> NewSession:
    """Start a session for ``user_id``; returns the token once."""
    now = now or utcnow()
    user = session.get(UserRow, user_id)
    if user is None:
        raise LookupError(f"no user with id {user_id}")
    prune(session, now=now)
    token = secrets.token_urlsafe(32)
    row = WebSessionRow(
        user_id=user_id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=_expiry(now, now, idle, lifetime),
        last_seen_at=now,
        ip=ip[:64] if ip else None,
        user_agent=user_agent[:512] if user_agent else None,
    )
    session.add(row)
    session.flush()
    return NewSession(row.id, token, UserInfo.from_row(user), row.expires_at)


def verify(
    session: Session,
    token: str | None,
    *,
    now: datetime | None = None,
    idle: timedelta = IDLE_TIMEOUT,
    lifetime: timedelta = MAX_LIFETIME,
) -> Principal | None:
    """The principal of a live session token, sliding its expiry; None if unknown, ended or disabled."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = now or utcnow()
    found = find_by_secret(session, WebSessionRow, token)
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or now >= row.expires_at or user.disabled:
        return None
    new_expiry = _expiry(row.created_at, now, idle, lifetime)
    if now - row.last_seen_at >= TOUCH_EVERY or new_expiry - row.expires_at >= TOUCH_EVERY:
        row.last_seen_at = now
        row.expires_at = max(row.expires_at, new_expiry)
    return Principal(UserInfo.from_row(user), "session", row.id, row.expires_at)


def peek(
    connection: Connection,
    token: str | None,
    *,
    now: datetime | None = None,
    idle: timedelta = IDLE_TIMEOUT,
    lifetime: timedelta = MAX_LIFETIME,
) -> tuple[Principal | None, bool]:
    """:func:`verify` without writing: (the principal or None, whether :func:`verify` must run to
    slide the expiry, which it does at most every ``TOUCH_EVERY``)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None, False
    now = now or utcnow()
    row = lookup(connection, WebSessionRow, token)
    if row is None or row.revoked_at is not None or now >= row.expires_at or row.owner_disabled:
        return None, False
    new_expiry = _expiry(row.created_at, now, idle, lifetime)
    if now - row.last_seen_at >= TOUCH_EVERY or new_expiry - row.expires_at >= TOUCH_EVERY:
        return None, True
    return Principal(UserInfo.from_row(row, prefix="owner_"), "session", row.id, row.expires_at), False


def revoke(session: Session, token: str, *, now: datetime | None = None) -> bool:
    """Log out: end the session of ``token``. False if it was unknown or already ended."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    result = session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.token_hash == token_hash(token), WebSessionRow.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(result.rowcount)


def revoke_id(session: Session, session_id: int, *, now: datetime | None = None) -> bool:
    """End one session by id (e.g. from a "your sessions" list)."""
    result = session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.id == session_id, WebSessionRow.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(result.rowcount)


def revoke_all_for_user(
    session: Session, user_id: int, *, now: datetime | None = None, except_id: int | None = None
) -> int:
    """End every session of a user (password change, disabling); returns how many were live."""
    query = (
        update(WebSessionRow)
        .where(WebSessionRow.user_id == user_id, WebSessionRow.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    if except_id is not None:
        query = query.where(WebSessionRow.id != except_id)
    return int(session.execute(query).rowcount or 0)


def list_sessions(session: Session, user_id: int, *, now: datetime | None = None) -> list[SessionInfo]:
    """The user's live sessions, newest first."""
    now = now or utcnow()
    rows = session.execute(
        select(WebSessionRow)
        .where(
            WebSessionRow.user_id == user_id,
            WebSessionRow.revoked_at.is_(None),
            WebSessionRow.expires_at > now,
        )
        .order_by(WebSessionRow.id.desc())
    ).scalars()
    return [
        SessionInfo(
            r.id, r.user_id, r.created_at, r.expires_at, r.last_seen_at, r.ip, r.user_agent, r.revoked_at
        )
        for r in rows
    ]


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete sessions that ended more than ``KEEP_ENDED`` ago; returns how many."""
    cutoff = (now or utcnow()) - KEEP_ENDED
    result = session.execute(
        delete(WebSessionRow).where(or_(WebSessionRow.expires_at < cutoff, WebSessionRow.revoked_at < cutoff))
    )
    return int(result.rowcount or 0)
