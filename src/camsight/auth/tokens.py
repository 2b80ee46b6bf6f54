"""API tokens for integrations: ``cs_<prefix>_<secret>``, shown once, stored as a sha256.

The 8-character ``prefix`` is kept in clear so lists can show which token is
which (``cs_1a2b3c4d_…``); it is not enough to use the token. A token acts
as its user, with that user's role and cameras, until it is revoked, it
expires, or the user is disabled or removed.

>>> parse_prefix("cs_1a2b3c4d_Zm9vYmFyYmF6cXV4cXV1eGNvcmdl")
'1a2b3c4d'
>>> parse_prefix("not-a-token") is None
True
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from camsight.auth import audit
from camsight.auth.audit import Action, Actor
from camsight.auth.errors import AccountError
from camsight.auth.principal import Principal, UserInfo
from camsight.auth.secrets_store import find_by_secret, lookup, token_hash
from camsight.errors import NotFoundError
from camsight.store.models import ApiTokenRow, UserRow, utcnow

TOKEN_PREFIX = "cs_"
_TOKEN_RE = re.compile(r"^cs_([0-9a-f]{8})_([A-Za-z0-9_-]{20,128})$")
#: ``last_used_at`` is written at most this often per token.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def display(self) -> str:
        """How to show the token: enough to recognise it, not to use it."""
        return f"{TOKEN_PREFIX}{self.prefix}_…"

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (now or utcnow()) >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "prefix": self.prefix,
            "display": self.display,
            "state": self.state(),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class NewToken:
    """A token just created. ``secret`` is shown to its owner once and never stored."""

    info: TokenInfo
    secret: str


def parse_prefix(secret: str) -> str | None:
    """The prefix of a well-formed token, else None."""
    m = _TOKEN_RE.match(secret.strip())
    return m.group(1) if m else None


def _info(row: ApiTokenRow, user: str) -> TokenInfo:
    return TokenInfo(
        row.id, user, row.name, row.prefix, row.created_at, row.expires_at, row.last_used_at, row.revoked_at
    )


def _user_row(session: Session, name: str) -> UserRow:
    row = session.execute(select(UserRow).where(UserRow.name == name.strip().lower())).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no user named {name!r}")
    return row


def create(
    session: Session,
    user: str,
    name: str,
    *,
    by: Actor,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> NewToken:
    """Create a token for user ``user`` called ``name`` (what it is for, e.g. "home-assistant")."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise AccountError("token name must be 1 to 64 printable characters")
    if expires_at is not None and expires_at <= now:
        raise AccountError("token expiry must be in the future")
    owner = _user_row(session, user)
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiTokenRow(
        user_id=owner.id,
        name=name,
        token_hash=token_hash(secret),
        prefix=prefix,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        by,
        Action.TOKEN_CREATE,
        target=owner.name,
        detail={
            "token_id": row.id,
            "token": name,
            "prefix": prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return NewToken(_info(row, owner.name), secret)


def verify(session: Session, secret: str | None, *, now: datetime | None = None) -> Principal | None:
    """The principal a token acts as; None if malformed, unknown, revoked, expired or its user disabled."""
    if not secret or parse_prefix(secret) is None:
        return None
    now = now or utcnow()
    found = find_by_secret(session, ApiTokenRow, secret.strip())
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or user.disabled:
        return None
    if row.expires_at is not None and now >= row.expires_at:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return Principal(UserInfo.from_row(user), "token", row.id, row.expires_at)


def peek(
    connection: Connection, secret: str | None, *, now: datetime | None = None
) -> tuple[Principal | None, bool]:
    """:func:`verify` without writing: (the principal or None, whether :func:`verify` must run
    to record this use, which it does at most every ``TOUCH_EVERY``)."""
    if not secret or parse_prefix(secret) is None:
        return None, False
    now = now or utcnow()
    row = lookup(connection, ApiTokenRow, secret.strip())
    if row is None or row.revoked_at is not None or row.owner_disabled:
        return None, False
    if row.expires_at is not None and now >= row.expires_at:
        return None, False
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        return None, True
    return Principal(UserInfo.from_row(row, prefix="owner_"), "token", row.id, row.expires_at), False


def _find(session: Session, ref: int | str, user: str | None) -> tuple[ApiTokenRow, str]:
    query = select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id)
    text = str(ref).strip()
    prefix = text.removeprefix(TOKEN_PREFIX).split("_", 1)[0].rstrip("…").lower()
    is_prefix = not isinstance(ref, int) and re.fullmatch(r"[0-9a-f]{8}", prefix) is not None
    if isinstance(ref, int) or text.isdigit():
        # A random hex prefix is all digits about 1 time in 40, so "12345678" may be either.
        by_id = ApiTokenRow.id == int(text)
        query = query.where(or_(by_id, ApiTokenRow.prefix == prefix) if is_prefix else by_id)
    elif is_prefix:
        query = query.where(ApiTokenRow.prefix == prefix)
    else:
        raise AccountError(f"not a token id or prefix: {text!r} (see `camsight tokens list`)")
    if user is not None:
        query = query.where(UserRow.name == user.strip().lower())
    found = session.execute(query).all()
    if not found:
        raise NotFoundError(f"no API token {text!r}" + (f" of user {user!r}" if user else ""))
    if len(found) > 1:
        raise AccountError(f"prefix {text!r} matches {len(found)} tokens: give the token id instead")
    row, owner = found[0]
    return row, owner


def revoke(
    session: Session, ref: int | str, *, by: Actor, user: str | None = None, now: datetime | None = None
) -> TokenInfo:
    """Revoke a token by id or prefix (``1a2b3c4d`` or ``cs_1a2b3c4d_…``).

    With ``user``, only that user's tokens are considered (a user revoking
    their own). Revoking a revoked token is an error, so a typo never passes silently.
    """
    row, owner = _find(session, ref, user)
    if row.revoked_at is not None:
        raise AccountError(f"API token {row.id} ({row.name}) is already revoked")
    row.revoked_at = now or utcnow()
    session.flush()
    audit.record(
        session,
        by,
        Action.TOKEN_REVOKE,
        target=owner,
        detail={"token_id": row.id, "token": row.name, "prefix": row.prefix},
    )
    return _info(row, owner)


def revoke_all(session: Session, user: str, *, by: Actor, now: datetime | None = None) -> list[TokenInfo]:
    """Revoke every active token of ``user`` at once (after a password change, a lost laptop...).

    One audit entry names the tokens revoked; none left to revoke is not an
    error (the entry says so), since the point is that none remains.
    """
    owner = _user_row(session, user)
    now = now or utcnow()
    rows = (
        session.execute(
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == owner.id, ApiTokenRow.revoked_at.is_(None))
            .order_by(ApiTokenRow.id)
        )
        .scalars()
        .all()
    )
    for row in rows:
        row.revoked_at = now
    session.flush()
    audit.record(
        session,
        by,
        Action.TOKEN_REVOKE,
        target=owner.name,
        detail={"all": True, "count": len(rows), "token_ids": [r.id for r in rows]},
    )
    return [_info(row, owner.name) for row in rows]


def list_tokens(
    session: Session, user: str | None = None, *, include_revoked: bool = False
) -> list[TokenInfo]:
    """Tokens (of ``user``, or everyone's), oldest first; revoked ones only when asked."""
    query = select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id)
    if user is not None:
        _user_row(session, user)
        query = query.where(UserRow.name == user.strip().lower())
    if not include_revoked:
        query = query.where(ApiTokenRow.revoked_at.is_(None))
    return [_info(row, owner) for row, owner in session.execute(query.order_by(ApiTokenRow.id))]
