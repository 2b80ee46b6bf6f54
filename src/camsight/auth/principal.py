"""Who is signed in: a detached view of a user, and how they proved it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from camsight.auth.audit import Actor
from camsight.auth.roles import Permission, allowed, camera_scope
from camsight.store.models import UserRow


@dataclass(frozen=True)
class UserInfo:
    """A user as the rest of camsight sees it (never the password hash).

    ``cameras`` None means every camera. Fits :class:`camsight.auth.roles.Subject`.
    """

    id: int
    name: str
    role: str
    cameras: tuple[str, ...] | None
    disabled: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: UserRow) -> UserInfo:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            cameras=tuple(row.cameras) if row.cameras is not None else None,
            disabled=bool(row.disabled),
            must_change_password=bool(row.must_change_password),
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )

    @classmethod
    def from_columns(cls, row: Any) -> UserInfo:
        """From a query row holding the user's columns as ``owner_<column>`` (secrets_store.lookup)."""
        return cls(
            id=row.owner_id,
            name=row.owner_name,
            role=row.owner_role,
            cameras=tuple(row.owner_cameras) if row.owner_cameras is not None else None,
            disabled=bool(row.owner_disabled),
            must_change_password=bool(row.owner_must_change_password),
            created_at=row.owner_created_at,
            last_login_at=row.owner_last_login_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "cameras": list(self.cameras) if self.cameras is not None else None,
            "disabled": self.disabled,
            "must_change_password": self.must_change_password,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True)
class Principal:
    """The caller of a request: the user (read fresh on every check) and the credential used.

    ``via`` is ``session`` (browser cookie) or ``token`` (API token);
    ``credential_id`` is that session's or token's id.
    """

    user: UserInfo
    via: Literal["session", "token"]
    credential_id: int
    expires_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.user.name

    def can(self, permission: Permission | str, camera: str | None = None) -> bool:
        """``roles.allowed`` for this user."""
        return allowed(self.user, permission, camera)

    def camera_scope(self) -> frozenset[str] | None:
        """Cameras this user may see (None: all), for filtering queries."""
        return camera_scope(self.user)

    def actor(self, ip: str | None = None) -> Actor:
        """The audit actor for what this caller does from ``ip``."""
        return Actor(self.user.name, ip)
