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
    def from_row(cls, row: UserRow | Any, prefix: str = "") -> UserInfo:
        """From a ``UserRow``, or a query row holding its columns as ``<prefix><column>``
        (secrets_store.lookup reads them beside a token's as ``owner_<column>``)."""

        def col(name: str) -> Any:
            return getattr(row, prefix + name)

        cameras = col("cameras")
        return cls(
            id=col("id"),
            name=col("name"),
            role=col("role"),
            cameras=tuple(cameras) if cameras is not None else None,
            disabled=bool(col("disabled")),
            must_change_password=bool(col("must_change_password")),
            created_at=col("created_at"),
            last_login_at=col("last_login_at"),
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
