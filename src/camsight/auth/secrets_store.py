"""Secrets kept as hashes: session cookies and API tokens are found by their sha256, never stored."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, select
from sqlalchemy.orm import Session

from camsight.store.models import UserRow


def token_hash(secret: str) -> str:
    """sha256 hex of a high-entropy secret (such secrets need no slow hash).

    >>> token_hash("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def find_by_secret(session: Session, row_class: Any, secret: str) -> tuple[Any, UserRow] | None:
    """The row of ``row_class`` (with a ``token_hash`` and ``user_id``) holding ``secret``, and its user."""
    digest = token_hash(secret)
    found = session.execute(
        select(row_class, UserRow)
        .join(UserRow, UserRow.id == row_class.user_id)
        .where(row_class.token_hash == digest)
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    # Found by its hash, so timing reveals nothing of the secret; compare in constant time anyway.
    if not hmac.compare_digest(row.token_hash, digest):
        return None
    return row, user


#: Per credential table, the one query :func:`lookup` runs (built once: it runs on every request).
_LOOKUPS: dict[str, Select[Any]] = {}


def _lookup_query(row_class: Any) -> Select[Any]:
    table = row_class.__table__
    query = _LOOKUPS.get(table.name)
    if query is None:
        users = UserRow.__table__
        # The user's columns as ``owner_<name>``, never the password hash.
        user_columns = [c.label(f"owner_{c.key}") for c in users.c if c.key != "password_hash"]
        query = (
            select(table, *user_columns)
            .join(users, users.c.id == table.c.user_id)
            .where(table.c.token_hash == bindparam("digest"))
        )
        _LOOKUPS[table.name] = query
    return query


def lookup(connection: Connection, row_class: Any, secret: str) -> Row[Any] | None:
    """:func:`find_by_secret` as one Core query that only reads: the credential's columns and its
    user's (as ``owner_<column>``, without the password hash), or None.

    Checking a credential is done on every API request, and loading two ORM objects in a
    transaction of their own cost several times the query.
    """
    digest = token_hash(secret)
    row = connection.execute(_lookup_query(row_class), {"digest": digest}).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row
