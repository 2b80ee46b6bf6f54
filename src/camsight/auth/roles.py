"""Roles, permissions and per-camera access.

- ``admin``: everything, on every camera.
- ``operator``: search, view clips, export, acknowledge events, live view and events.
- ``viewer``: live view and events only.

An operator or viewer may be limited to some cameras (``cameras`` is a list
of names); such a user sees nothing of the other cameras. ``cameras`` None
means every camera. A disabled user is allowed nothing.

>>> from types import SimpleNamespace
>>> guard = SimpleNamespace(role="viewer", cameras=["gate"], disabled=False)
>>> allowed(guard, Permission.VIEW_LIVE, "gate"), allowed(guard, Permission.VIEW_LIVE, "lobby")
(True, False)
>>> allowed(guard, Permission.SEARCH, "gate")
False
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    SEARCH = "search"
    VIEW_CLIPS = "view_clips"
    EXPORT = "export"
    ACKNOWLEDGE = "acknowledge"
    VIEW_LIVE = "view_live"
    VIEW_EVENTS = "view_events"
    #: Masks, zones, lines and camera settings.
    MANAGE_CAMERAS = "manage_cameras"
    MANAGE_USERS = "manage_users"
    READ_AUDIT = "read_audit"
    CHANGE_CONFIG = "change_config"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.SEARCH,
            Permission.VIEW_CLIPS,
            Permission.EXPORT,
            Permission.ACKNOWLEDGE,
            Permission.VIEW_LIVE,
            Permission.VIEW_EVENTS,
        }
    ),
    Role.VIEWER: frozenset({Permission.VIEW_LIVE, Permission.VIEW_EVENTS}),
}

#: Permissions about the whole system, where a camera restriction does not apply (admins only).
SYSTEM_PERMISSIONS = frozenset(
    {Permission.MANAGE_CAMERAS, Permission.MANAGE_USERS, Permission.READ_AUDIT, Permission.CHANGE_CONFIG}
)


class Subject(Protocol):
    """What access checks need of a user: the ORM row and ``UserInfo`` both fit."""

    @property
    def role(self) -> str: ...

    @property
    def cameras(self) -> Sequence[str] | None: ...

    @property
    def disabled(self) -> bool: ...


def parse_role(value: str) -> Role:
    """``Role`` from text, or ValueError naming the roles."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {value!r} (roles: {', '.join(r.value for r in Role)})") from None


def permissions(user: Subject) -> frozenset[Permission]:
    """Everything ``user`` may do on the cameras it can see (nothing when disabled or unknown role)."""
    if user.disabled:
        return frozenset()
    try:
        return ROLE_PERMISSIONS[Role(user.role)]
    except ValueError:
        return frozenset()


def camera_scope(user: Subject) -> frozenset[str] | None:
    """The cameras ``user`` may see, or None for every camera (for filtering queries)."""
    if user.role == Role.ADMIN or user.cameras is None:
        return None
    return frozenset(user.cameras)


def can_see_camera(user: Subject, camera: str) -> bool:
    if user.disabled:
        return False
    scope = camera_scope(user)
    return scope is None or camera in scope


def allowed(user: Subject, permission: Permission | str, camera: str | None = None) -> bool:
    """Whether ``user`` may do ``permission``, on ``camera`` when one is named.

    With ``camera`` None the answer is about the role only: a search across
    cameras is allowed, and the caller must then keep to :func:`camera_scope`
    (or :func:`visible_cameras`) when it picks results.
    """
    permission = Permission(permission)
    if permission not in permissions(user):
        return False
    if camera is None or permission in SYSTEM_PERMISSIONS:
        return True
    return can_see_camera(user, camera)


def visible_cameras(user: Subject, cameras: Iterable[str]) -> list[str]:
    """The names among ``cameras`` that ``user`` may see, in their order."""
    return [c for c in cameras if can_see_camera(user, c)]
