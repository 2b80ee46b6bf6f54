"""Users: create, list, change, remove; and the first admin at first start.

Every change writes its audit entry in the same transaction, with ``by``
(an :class:`~camsight.auth.audit.Actor`) as who did it. Names are
normalised to lower case. The last enabled admin can be neither removed,
disabled nor demoted, so the system never locks its admins out, and no user
disables, demotes or removes themselves (another admin does).

Example::

    with store.session() as db:
        create_user(db, "alice", "a long passphrase", "operator", by=Actor.cli(), cameras=["lobby"])
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camsight.auth import audit
from camsight.auth.audit import Action, Actor
from camsight.auth.errors import AccountConflict, AccountError, InvalidCredentials
from camsight.auth.passwords import check_policy, hash_password, verify_password
from camsight.auth.principal import UserInfo
from camsight.auth.roles import Role, parse_role
from camsight.auth.sessions import revoke_all_for_user
from camsight.errors import NotFoundError
from camsight.store.db import Store
from camsight.store.models import Camera, UserRow, utcnow

ADMIN_NAME = "admin"
ADMIN_PASSWORD_ENV = "CAMSIGHT_ADMIN_PASSWORD"
#: Names the audit log uses for non-users.
RESERVED_NAMES = frozenset({audit.SYSTEM, audit.ANONYMOUS})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class _Keep(Enum):
    KEEP = "keep"


#: "Leave unchanged" for :func:`update_user` arguments where None has a meaning.
KEEP = _Keep.KEEP


def normalise_name(name: str) -> str:
    """The stored form of a user name, or :class:`AccountError` saying what is allowed.

    >>> normalise_name(" Alice ")
    'alice'
    """
    value = name.strip().lower()
    if not _NAME_RE.match(value):
        raise AccountError(
            f"invalid user name {name!r}: use 1 to 64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    if value in RESERVED_NAMES:
        raise AccountError(f"user name {value!r} is reserved")
    return value


def require_role(value: str | Role) -> Role:
    """``Role`` from text, or :class:`AccountError` naming the roles."""
    try:
        return parse_role(str(value))
    except ValueError as exc:
        raise AccountError(str(exc)) from None


def validate_cameras(
    session: Session, cameras: Iterable[str] | None, known_cameras: Iterable[str] | None = None
) -> list[str] | None:
    """Clean a camera list (None = every camera).

    A name must be a stored camera or one of ``known_cameras`` (e.g. the
    config's); while no camera is known at all, any name is accepted, so
    accounts can be set up before the first camera runs.
    """
    if cameras is None:
        return None
    names: list[str] = []
    for c in cameras:
        c = c.strip()
        if not c:
            raise AccountError("empty camera name in the camera list")
        if c not in names:
            names.append(c)
    known = set(session.execute(select(Camera.name)).scalars()) | set(known_cameras or ())
    if known:
        unknown = [c for c in names if c not in known]
        if unknown:
            raise AccountError(f"no camera named {unknown[0]!r} (cameras: {', '.join(sorted(known))})")
    return names


def _row(session: Session, name: str) -> UserRow:
    row = session.execute(select(UserRow).where(UserRow.name == name.strip().lower())).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no user named {name!r}")
    return row


def _other_enabled_admins(session: Session, user_id: int) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.role == Role.ADMIN.value, UserRow.disabled.is_(False), UserRow.id != user_id)
        ).scalar_one()
    )


def create_user(
    session: Session,
    name: str,
    password: str,
    role: str | Role,
    *,
    by: Actor,
    cameras: Sequence[str] | None = None,
    must_change_password: bool = False,
    known_cameras: Iterable[str] | None = None,
) -> UserInfo:
    """Create a user. ``cameras`` None: every camera (admins always have every camera)."""
    name = normalise_name(name)
    role = require_role(role)
    if role is Role.ADMIN and cameras is not None:
        raise AccountError("an admin sees every camera: camera limits apply to operators and viewers")
    cams = validate_cameras(session, cameras, known_cameras)
    check_policy(password, name)
    if session.execute(select(UserRow.id).where(UserRow.name == name)).first() is not None:
        raise AccountError(f"user {name!r} already exists")
    row = UserRow(
        name=name,
        password_hash=hash_password(password),
        role=role.value,
        cameras=cams,
        disabled=False,
        must_change_password=must_change_password,
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise AccountError(f"user {name!r} already exists") from None
    audit.record(
        session,
        by,
        Action.USER_CREATE,
        target=name,
        detail={"role": role.value, "cameras": cams, "must_change_password": must_change_password},
    )
    return UserInfo.from_row(row)


def list_users(session: Session) -> list[UserInfo]:
    """Every user, by name."""
    return [UserInfo.from_row(r) for r in session.execute(select(UserRow).order_by(UserRow.name)).scalars()]


def get_user(session: Session, name: str) -> UserInfo:
    """The user called ``name``, or :class:`NotFoundError`."""
    return UserInfo.from_row(_row(session, name))


def find_user(session: Session, name: str) -> UserInfo | None:
    """The user called ``name``, or None (also for names that cannot exist)."""
    row = session.execute(select(UserRow).where(UserRow.name == name.strip().lower())).scalar_one_or_none()
    return UserInfo.from_row(row) if row is not None else None


def update_user(
    session: Session,
    name: str,
    *,
    by: Actor,
    role: str | Role | None = None,
    cameras: Sequence[str] | Literal[_Keep.KEEP] | None = KEEP,
    disabled: bool | None = None,
    known_cameras: Iterable[str] | None = None,
) -> UserInfo:
    """Change role, cameras (None = every camera) and/or disabled; unchanged where not given.

    Disabling a user ends their sessions; making a user admin lifts any camera limit.
    """
    row = _row(session, name)
    changes: dict[str, list[Any]] = {}
    new_role = require_role(role) if role is not None else Role(row.role)
    if new_role is Role.ADMIN and cameras is not KEEP and cameras is not None:
        raise AccountError("an admin sees every camera: camera limits apply to operators and viewers")
    if by.name == row.name and disabled and not row.disabled:
        raise AccountConflict("you cannot disable your own account: another admin can")
    if by.name == row.name and row.role == Role.ADMIN.value and new_role is not Role.ADMIN:
        raise AccountConflict("you cannot take away your own admin role: another admin can")
    removes_admin = (
        row.role == Role.ADMIN.value and not row.disabled and (new_role is not Role.ADMIN or disabled)
    )
    if removes_admin and _other_enabled_admins(session, row.id) == 0:
        raise AccountConflict(f"{row.name!r} is the last enabled admin: make another user admin first")
    if new_role.value != row.role:
        changes["role"] = [row.role, new_role.value]
        row.role = new_role.value
    if new_role is Role.ADMIN and row.cameras is not None:
        changes["cameras"] = [row.cameras, None]
        row.cameras = None
    elif cameras is not KEEP:
        cams = validate_cameras(session, cameras, known_cameras)
        if cams != row.cameras:
            changes["cameras"] = [row.cameras, cams]
            row.cameras = cams
    if disabled is not None and disabled != row.disabled:
        changes["disabled"] = [row.disabled, disabled]
        row.disabled = disabled
        if disabled:
            revoke_all_for_user(session, row.id)
    if changes:
        session.flush()
        audit.record(session, by, Action.USER_UPDATE, target=row.name, detail={"changes": changes})
    return UserInfo.from_row(row)


def set_password(
    session: Session,
    name: str,
    password: str,
    *,
    by: Actor,
    current_password: str | None = None,
    must_change: bool = False,
    generated: bool = False,
) -> UserInfo:
    """Set a new password and end the user's sessions.

    ``current_password`` (self-service) must match when given. ``must_change``
    marks it temporary: the user must choose their own at the next sign-in; ``generated``
    says in the audit entry that it was made by :func:`generate_password` (a reset).
    """
    row = _row(session, name)
    if current_password is not None and not verify_password(row.password_hash, current_password):
        raise InvalidCredentials("the current password is wrong")
    check_policy(password, row.name)
    if verify_password(row.password_hash, password):
        raise AccountError("the new password must differ from the current one")
    row.password_hash = hash_password(password)
    row.must_change_password = must_change
    ended = revoke_all_for_user(session, row.id)
    session.flush()
    audit.record(
        session,
        by,
        Action.USER_PASSWORD,
        target=row.name,
        detail={"must_change_password": must_change, "sessions_ended": ended}
        | ({"generated": True} if generated else {}),
    )
    return UserInfo.from_row(row)


def reset_password(session: Session, name: str, *, by: Actor) -> tuple[UserInfo, str]:
    """Give ``name`` a new one-time password, returned once for the admin to pass on.

    The user's sessions end, and the password must be changed at the next sign-in (as
    ``camsight users passwd --generate``). Their API tokens go on working: revoke them
    separately when the reset is because of a leak.
    """
    password = generate_password()
    info = set_password(session, name, password, by=by, must_change=True, generated=True)
    return info, password


def delete_user(session: Session, name: str, *, by: Actor) -> None:
    """Remove a user with their tokens and sessions (the audit log keeps their entries)."""
    row = _row(session, name)
    if by.name == row.name:
        raise AccountConflict("you cannot remove your own account: another admin can")
    if row.role == Role.ADMIN.value and not row.disabled and _other_enabled_admins(session, row.id) == 0:
        raise AccountConflict(f"{row.name!r} is the last enabled admin: make another user admin first")
    info = {"role": row.role, "cameras": row.cameras}
    user_name = row.name
    session.delete(row)  # tokens and sessions go by ON DELETE CASCADE
    session.flush()
    audit.record(session, by, Action.USER_DELETE, target=user_name, detail=info)


def generate_password() -> str:
    """A random one-time password (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)


def bootstrap_admin(store: Store, env_password: str | None) -> str | None:
    """At first start (no users at all), create ``admin``.

    With ``env_password`` (from ``CAMSIGHT_ADMIN_PASSWORD``) that is its
    password and None is returned. Without, a one-time password is generated
    and returned for the caller to print once. Either way the admin must
    change it at the first sign-in: a variable stays readable in the process
    environment, shell history and container settings, so it is only good for
    the first sign-in. Returns None when users exist already (the variable is
    then ignored) or another process created the admin at the same moment.
    A weak ``env_password`` raises :class:`PasswordPolicyError`.
    """
    with store.sessions() as session:
        if session.execute(select(UserRow.id).limit(1)).first() is not None:
            return None
    generated = None if env_password else generate_password()
    password = env_password or generated or ""
    check_policy(password, ADMIN_NAME)
    password_hash = hash_password(password)  # slow: before taking the write lock
    try:
        with store.session() as session:
            row = UserRow(
                name=ADMIN_NAME,
                password_hash=password_hash,
                role=Role.ADMIN.value,
                cameras=None,
                disabled=False,
                must_change_password=True,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()  # takes the write lock; now the count below is final
            if session.execute(select(func.count()).select_from(UserRow)).scalar_one() > 1:
                raise _SomeoneElseFirst
            audit.record(
                session,
                Actor.system(),
                Action.USER_CREATE,
                target=ADMIN_NAME,
                detail={
                    "role": Role.ADMIN.value,
                    "bootstrap": True,
                    "password": "generated" if generated else "environment",
                    "must_change_password": True,
                },
            )
    except (IntegrityError, _SomeoneElseFirst):
        return None
    return generated


class _SomeoneElseFirst(Exception):
    """Users appeared between the check and the insert: leave them alone."""
