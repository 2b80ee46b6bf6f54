"""Secrets kept as hashes: session cookies and API tokens are found by their sha256, never stored."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select
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
